"""The one error type of the bitstream layer."""


class BitstreamError(ValueError):
    """A bitstream cannot be decoded: truncated, corrupted, wrong version or wrong model.

    The message always names what is wrong (which field, what was found, what was
    expected).  It subclasses :class:`ValueError`, so ``except ValueError`` also catches it.
    """
