"""Is this value a number? The one test the argument checks share: numpy's numbers count, a bool
does not (``True`` is no time, size or count, though Python lets it pass as 1)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def is_real(value: Any) -> bool:
    """A real number (int, float, numpy's integers and floats), not a bool; NaN and Inf included."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """An integer (int, numpy's integers), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
