"""The error raised when a metric cannot be computed on this machine."""


class MetricUnavailable(RuntimeError):
    """A metric needs something that is not here (pretrained weights, a pristine model).

    The message names what is missing and where to put it.  Metrics are never computed
    on random weights as a fallback.
    """
