"""Ids that come from people and other services: URLs, forms, JSON."""

from __future__ import annotations

_MAX_DIGITS = 9  # ids fit a 32-bit column; longer "numbers" are not ids of ours


def positive_id(raw: object) -> int | None:
    """The id as an int, or None when it is not a positive whole number.

    Accepts ints and strings of digits (surrounding spaces allowed); refuses booleans,
    floats, signs, zero and anything longer than an id can be.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif (
        isinstance(raw, str)
        and raw.strip().isascii()
        and raw.strip().isdigit()
        and len(raw.strip()) <= _MAX_DIGITS
    ):
        value = int(raw.strip())
    else:
        return None
    return value if 0 < value < 10**_MAX_DIGITS else None
