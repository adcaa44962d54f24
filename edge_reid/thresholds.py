"""Threshold tests in float32: detection scores and cosine similarities are computed and stored in
float32, where a threshold such as 0.7 or 0.82 reads 0.69999999 or 0.81999999. Compared in float64, a
value given as exactly the threshold would fall below it; every stage compares through :func:`at_least`.
"""

from __future__ import annotations

import numpy as np


def at_least(values, threshold: float) -> np.ndarray:
    """Which of ``values`` reach ``threshold``, compared in float32.

    Args:
        values: a number or an array of detection scores in [0, 1] or cosine similarities in [-1, 1].
        threshold: the threshold, in the same units.

    Returns:
        A bool array of ``values``' shape (a 0-d array for a number: use ``bool()`` on it).
    """
    return np.asarray(values, np.float32) >= np.float32(threshold)


def margin_over(value: float, threshold: float) -> float:
    """``value - threshold`` computed in float32: exactly 0 for a value at the threshold, positive above it."""
    return float(np.float32(value) - np.float32(threshold))
