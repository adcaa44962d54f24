"""A growable, shrinkable matrix of unit embeddings with stable integer ids.

:class:`EmbeddingStore` keeps embeddings in one C-contiguous (capacity, D)
array so that :func:`~edge_reid.matching.topk.topk_cosine` can search
``vectors`` (a view of the first ``len(store)`` rows) without copying.

- Add: amortised O(1) per row. When full, capacity doubles (geometric growth,
  the ``std::vector`` / CPython ``list`` scheme), so a sequence of n adds copies
  O(n) rows in total, never the whole store per add.
- Remove: O(D) per row by *swap-with-last*: the last row moves into the freed
  slot and the id -> row map is updated. Rows therefore do not keep their
  insertion order; ids are the stable handle. When the store falls to a quarter
  of its capacity the capacity halves (amortised O(1) too).
- Storage: float32, or float16 (half the memory and memory traffic; scores
  are still computed in float32).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MIN_CAPACITY = 16


class EmbeddingStore:
    """Embeddings (rows) with int64 ids, searchable by cosine similarity.

    Args:
        dim: embedding length D.
        dtype: storage type, ``np.float32`` or ``np.float16``.
        capacity: initial number of rows allocated (grows as needed).
        normalize: L2-normalise rows on :meth:`add` (default True).

    Raises:
        ValueError: dim < 1 or a dtype other than float32 and float16.
        TypeError: ``dtype`` is not a dtype numpy knows.
    """

    def __init__(self, dim: int, dtype: type | np.dtype = np.float32, capacity: int = MIN_CAPACITY,
                 normalize: bool = True) -> None:
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self._dtype = np.dtype(dtype)
        if self._dtype not in (np.float32, np.float16):
            raise ValueError(f"dtype must be float32 or float16, got {self._dtype}")
        self._dim = int(dim)
        self._normalize = bool(normalize)
        capacity = max(MIN_CAPACITY, int(capacity))
        self._data = np.zeros((capacity, self._dim), dtype=self._dtype)
        self._ids = np.zeros(capacity, dtype=np.int64)
        self._labels = np.zeros(capacity, dtype=np.int64)
        self._row_of: dict[int, int] = {}
        self._size = 0
        self._next_id = 0

    # -- properties ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding length D."""
        return self._dim

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype (float32 or float16)."""
        return self._dtype

    @property
    def capacity(self) -> int:
        """Rows currently allocated (>= ``len(self)``)."""
        return int(self._data.shape[0])

    @property
    def vectors(self) -> np.ndarray:
        """(len, D) view of the stored rows, C-contiguous; row i has id ``ids[i]``.

        Valid until the next add/remove (which may move rows or reallocate).
        """
        return self._data[: self._size]

    @property
    def ids(self) -> np.ndarray:
        """(len,) int64 view: the id of each row of :attr:`vectors`."""
        return self._ids[: self._size]

    @property
    def labels(self) -> np.ndarray:
        """(len,) int64 view: the label of each row (e.g. the identity owning it; 0 by default)."""
        return self._labels[: self._size]

    def __len__(self) -> int:
        return self._size

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, (int, np.integer)) and int(item_id) in self._row_of

    def row_of(self, item_id: int) -> int:
        """Current row of ``item_id`` in :attr:`vectors`. Raises KeyError when absent."""
        return self._row_of[int(item_id)]

    def get(self, item_id: int) -> np.ndarray:
        """(D,) copy of the embedding with id ``item_id`` (in storage dtype). Raises KeyError."""
        return self._data[self._row_of[int(item_id)]].copy()

    # -- mutation -----------------------------------------------------------------------------
    def _resize(self, capacity: int) -> None:
        data = np.zeros((capacity, self._dim), dtype=self._dtype)
        ids = np.zeros(capacity, dtype=np.int64)
        labels = np.zeros(capacity, dtype=np.int64)
        data[: self._size] = self._data[: self._size]
        ids[: self._size] = self._ids[: self._size]
        labels[: self._size] = self._labels[: self._size]
        self._data, self._ids, self._labels = data, ids, labels

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows in all before adding them (a gallery being loaded: one allocation of
        the size it needs, instead of doublings that hold the old and the new arrays at once)."""
        if int(rows) > self.capacity:
            self._resize(int(rows))

    def add(self, embeddings: np.ndarray, ids: Iterable[int] | None = None, labels: int | np.ndarray = 0,
            normalize: bool | None = None) -> np.ndarray:
        """Append rows; returns their ids, (M,) int64.

        Args:
            embeddings: (M, D) or (D,) floating point, finite, non-zero rows.
            ids: optional (M,) ids to use (must be new and distinct); default:
                fresh ids counting up from the largest id ever used + 1.
            labels: an int64 label for all rows, or (M,) labels (kept with each row).
            normalize: override the store's ``normalize`` for this call (False to
                store rows exactly as given, e.g. when loading saved rows).

        Raises:
            ValueError: wrong shape, non-finite values, zero rows, duplicate/existing ids, or labels
                that are neither one int nor one per row.
        """
        x = np.asarray(embeddings)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self._dim:
            raise ValueError(f"embeddings must have shape (M, {self._dim}), got {np.shape(embeddings)}")
        normalize = self._normalize if normalize is None else bool(normalize)
        x = x.astype(np.float32, copy=normalize) if normalize or x.dtype != self._dtype else x
        if not np.isfinite(x).all():
            raise ValueError("embeddings contain NaN or Inf")
        count = x.shape[0]
        if normalize and count:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            if (norms == 0).any():
                raise ValueError("cannot normalise an all-zero embedding")
            x /= norms
        if ids is None:
            new_ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        else:
            new_ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).reshape(-1)
            if new_ids.shape[0] != count:
                raise ValueError(f"got {new_ids.shape[0]} ids for {count} embeddings")
            if len(set(new_ids.tolist())) != count or any(int(i) in self._row_of for i in new_ids):
                raise ValueError("ids must be distinct and not already in the store")
        row_labels = np.asarray(labels, dtype=np.int64)
        if row_labels.ndim > 1 or (row_labels.ndim == 1 and row_labels.shape[0] != count):
            raise ValueError(f"got {row_labels.shape[0] if row_labels.ndim == 1 else row_labels.shape} labels for {count} embeddings")
        row_labels = np.broadcast_to(row_labels, (count,))
        needed = self._size + count
        if needed > self.capacity:
            self._resize(max(needed, 2 * self.capacity))
        rows = slice(self._size, needed)
        self._data[rows] = x
        self._ids[rows] = new_ids
        self._labels[rows] = row_labels
        for offset, item_id in enumerate(new_ids.tolist()):
            self._row_of[item_id] = self._size + offset
        self._size = needed
        if count:
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        return new_ids

    def remove(self, ids: int | Iterable[int]) -> None:
        """Remove rows by id (swap-with-last; see the module docstring).

        Raises:
            KeyError: an id is not in the store (nothing is removed then).
        """
        id_list = [int(ids)] if isinstance(ids, (int, np.integer)) else [int(i) for i in ids]
        missing = [i for i in id_list if i not in self._row_of]
        if missing:
            raise KeyError(f"ids not in the store: {missing[:10]}")
        for item_id in dict.fromkeys(id_list):
            row = self._row_of.pop(item_id)
            last = self._size - 1
            if row != last:
                moved = int(self._ids[last])
                self._data[row] = self._data[last]
                self._ids[row] = moved
                self._labels[row] = self._labels[last]
                self._row_of[moved] = row
            self._size = last
        if self.capacity > MIN_CAPACITY and self._size <= self.capacity // 4:
            self._resize(max(MIN_CAPACITY, self.capacity // 2))

    def clear(self) -> None:
        """Remove every row (ids are not reused)."""
        self._row_of.clear()
        self._size = 0
        self._resize(MIN_CAPACITY)

    # -- search -------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by cosine similarity for each query.

        Args:
            queries: (Q, D) or (D,) float, L2-normalised.
            k: results per query; ``k > len(self)`` returns ``len(self)`` columns.

        Returns:
            (scores (Q, k') float32 descending, ids (Q, k') int64), k' = min(k, len); a slot no row
            filled (a query holding NaN) has score -inf and id -1, never a stored row's id.

        Raises:
            ValueError: ``k`` < 1, or queries not (Q, D) / (D,) of this store's D (see :func:`~edge_reid.matching.topk.topk_cosine`).
        """
        from edge_reid.matching.topk import topk_cosine  # Numba: imported by the first search, not with the store

        result = topk_cosine(queries, self.vectors, k)
        if not result.indices.size:
            return result.scores, result.indices
        return result.scores, np.where(result.indices >= 0, self._ids[result.indices], -1)
