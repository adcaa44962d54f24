"""Is this value a number? The one test the argument checks share: numpy's numbers count, a bool
does not (``True`` is no time, size or count, though Python lets it pass as 1). And the one check of a
time in seconds that the tracker and the gallery share (:func:`check_seconds`)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

#: Latest time a gallery file may record and the tracker takes as seconds, since 1970 (the year 5138):
#: later is a damaged value, or milliseconds or nanoseconds.
MAX_TIMESTAMP_S = 1e11


def is_real(value: Any) -> bool:
    """A real number (int, float, numpy's integers and floats), not a bool; NaN and Inf included."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """An integer (int, numpy's integers), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_seconds(value: Any, name: str = "timestamp_s") -> float:
    """``value``, a time in seconds, as a float: a real number (:func:`is_real`: not text such as
    ``"0.1"``, not a bool), finite. Cheap enough for every frame.

    Raises:
        TypeError: not a real number (the message names ``name`` and the value).
        ValueError: NaN or infinite.
    """
    if not is_real(value):  # "0.1" and True are refused, not converted
        raise TypeError(f"{name} must be seconds (a number), got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return seconds


def not_seconds_hint(seconds: float) -> str:
    """What to say of a time later than :data:`MAX_TIMESTAMP_S` (1e11 s,
    the year 5138): it looks like milliseconds or nanoseconds since 1970 (a camera's ``CAP_PROP_POS_MSEC``,
    ``time.time_ns()``). The empty string for an earlier time."""
    if not seconds > MAX_TIMESTAMP_S:
        return ""
    return (f"{seconds!r} s is after the year 5138: it looks like milliseconds or nanoseconds since 1970, "
            "but seconds are expected (divide by 1e3 or 1e9)")
