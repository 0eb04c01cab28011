"""The one error type of the bitstream layer, and the helper that names the payload it concerns."""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["BitstreamError", "payload_context"]


class BitstreamError(ValueError):
    """A bitstream cannot be decoded: truncated, corrupted, wrong version or wrong model.

    The message always names what is wrong (which field or payload, what was found, what
    was expected).  It subclasses :class:`ValueError`, so ``except ValueError`` also catches it.
    """


@contextmanager
def payload_context(index: int, name: str):
    """Prefix a :class:`BitstreamError` raised inside the block with ``"payload {index} ({name}): "``.

    The entropy coders know what failed but not which section of the container they were
    given; the codec that hands them a payload knows that.  The new error is chained from
    the original cause (e.g. the range coder's ``AssertionError``), so no detail is lost.

    >>> try:
    ...     with payload_context(0, "y"):
    ...         raise BitstreamError("range decoder failed: invalid data")
    ... except BitstreamError as err:
    ...     print(err)
    payload 0 (y): range decoder failed: invalid data
    """
    try:
        yield
    except BitstreamError as err:
        raise BitstreamError(f"payload {index} ({name}): {err}") from (err.__cause__ or err)
