"""Box geometry for tracking: format conversion, IoU and overlap matrices, boxes moved by a camera's
warp (pixels, x1, y1, x2, y2)."""

from __future__ import annotations

import numpy as np


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) float64 centre x, centre y, width, height."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack(((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) float64 x1, y1, x2, y2."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    half = b[:, 2:4] / 2
    return np.concatenate((b[:, :2] - half, b[:, :2] + half), axis=1)


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)


def _areas(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (N, 4) with every box of ``b`` (M, 4).

    Returns:
        (N, M) float64 in [0, 1]; 0 where a box has no area.
    """
    inter = _intersections(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def coverage_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of each box of ``a`` (N, 4) covered by each box of ``b`` (M, 4).

    Returns:
        (N, M) float64 in [0, 1]: intersection area / area of the ``a`` box (0 where it has no area).
    """
    inter = _intersections(a, b)
    area = _areas(a)[:, None]
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def cumulative_warps(warps) -> list[np.ndarray]:
    """The (3, 3) maps of a sequence of (2, 3) warps applied one after the other (first first):
    element k is the first k warps together, element 0 the identity."""
    maps = [np.eye(3)]
    for warp in warps:
        maps.append(np.vstack((np.asarray(warp, np.float64), (0.0, 0.0, 1.0))) @ maps[-1])
    return maps


def warp_box(matrix: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A box (4,) x1, y1, x2, y2 moved by a (3, 3) similarity map: its centre mapped, its width and
    height scaled by the map's scale (the square root of the determinant); (4,) float64."""
    centre_x, centre_y, width, height = xyxy_to_xywh(box)[0]
    x, y, _ = np.asarray(matrix, np.float64) @ (centre_x, centre_y, 1.0)
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:2, :2]))))
    return xywh_to_xyxy(np.array([x, y, width * scale, height * scale]))[0]
