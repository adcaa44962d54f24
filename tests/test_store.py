"""EmbeddingStore: geometric growth, swap-with-last removal, search against a brute-force model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge_reid.matching.store import MIN_CAPACITY, EmbeddingStore

DIM = 6


def unit(rng, rows, dim=DIM):
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_adds_reallocate_logarithmically_often():
    store = EmbeddingStore(DIM)
    rng = np.random.default_rng(0)
    reallocations, buffer = 0, store._data
    for _ in range(5000):
        store.add(unit(rng, 1))
        if store._data is not buffer:
            reallocations, buffer = reallocations + 1, store._data
    assert len(store) == 5000
    assert reallocations <= int(np.ceil(np.log2(5000 / MIN_CAPACITY))) + 1
    assert store.capacity < 2 * 5000


def test_reserve_allocates_once_and_never_shrinks():
    store = EmbeddingStore(DIM)
    rng = np.random.default_rng(0)
    store.reserve(1000)
    buffer = store._data
    assert store.capacity == 1000
    for _ in range(10):
        store.add(unit(rng, 100))
    assert store._data is buffer and len(store) == 1000
    store.reserve(10)
    assert store.capacity == 1000 and store._data is buffer


def test_vectors_is_a_view_searchable_without_copy():
    store = EmbeddingStore(DIM)
    store.add(unit(np.random.default_rng(1), 10))
    assert np.shares_memory(store.vectors, store._data) and store.vectors.flags.c_contiguous


def test_remove_swaps_last_row_into_the_hole():
    store = EmbeddingStore(DIM)
    x = unit(np.random.default_rng(2), 4)
    ids = store.add(x, labels=np.array([10, 11, 12, 13]))
    store.remove(ids[1])
    assert len(store) == 3 and ids[1] not in store
    assert store.ids.tolist() == [ids[0], ids[3], ids[2]]
    assert store.labels.tolist() == [10, 13, 12]
    np.testing.assert_array_equal(store.vectors[1], x[3])
    assert store.row_of(ids[3]) == 1
    np.testing.assert_array_equal(store.get(ids[3]), x[3])


def test_remove_unknown_id_raises_and_removes_nothing():
    store = EmbeddingStore(DIM)
    ids = store.add(unit(np.random.default_rng(3), 3))
    with pytest.raises(KeyError):
        store.remove([ids[0], 999])
    assert len(store) == 3


def test_capacity_shrinks_when_mostly_empty():
    store = EmbeddingStore(DIM)
    ids = store.add(unit(np.random.default_rng(4), 1000))
    big = store.capacity
    store.remove(ids[:900])
    assert len(store) == 100 and store.capacity < big and store.capacity >= 100
    assert sorted(store.ids.tolist()) == ids[900:].tolist()


def test_ids_are_never_reused_and_explicit_ids_checked():
    store = EmbeddingStore(DIM)
    first = store.add(unit(np.random.default_rng(5), 2))
    store.remove(first[1])
    again = store.add(unit(np.random.default_rng(6), 1))
    assert again[0] not in first
    with pytest.raises(ValueError, match="distinct"):
        store.add(unit(np.random.default_rng(7), 1), ids=[first[0]])
    assert store.add(unit(np.random.default_rng(8), 1), ids=[100]).tolist() == [100]
    assert store.add(unit(np.random.default_rng(9), 1))[0] == 101


@pytest.mark.parametrize("bad, message", [
    (np.full((1, DIM), np.nan, np.float32), "NaN or Inf"),
    (np.zeros((1, DIM), np.float32), "all-zero"),
    (np.ones((1, DIM + 1), np.float32), "shape"),
])
def test_bad_embeddings_rejected(bad, message):
    store = EmbeddingStore(DIM)
    with pytest.raises(ValueError, match=message):
        store.add(bad)
    assert len(store) == 0


@pytest.mark.parametrize("labels, message", [([1, 2], "got 2 labels for 3 embeddings"), ([7], "got 1 labels for 3 embeddings"),
                                             (np.ones((3, 1), np.int64), r"got \(3, 1\) labels for 3 embeddings")])
def test_labels_neither_one_nor_one_per_row_are_refused_naming_both_lengths(labels, message):
    store = EmbeddingStore(DIM)
    with pytest.raises(ValueError, match=message):
        store.add(unit(np.random.default_rng(10), 3), labels=labels)
    assert len(store) == 0
    assert store.add(unit(np.random.default_rng(11), 3), labels=[4, 5, 6]).tolist() == [0, 1, 2]
    assert store.labels.tolist() == [4, 5, 6]


def test_add_normalises_rows():
    store = EmbeddingStore(2)
    store.add(np.float32([[3, 4]]))
    np.testing.assert_allclose(store.vectors, [[0.6, 0.8]])


def test_float16_store_search_close_to_float32():
    rng = np.random.default_rng(10)
    x, q = unit(rng, 3000, 64), unit(rng, 5, 64)
    s32, s16 = EmbeddingStore(64), EmbeddingStore(64, dtype=np.float16)
    s32.add(x), s16.add(x)
    assert s16.vectors.dtype == np.float16 and s16.vectors.nbytes * 2 == s32.vectors.nbytes
    scores32, ids32 = s32.search(q, 5)
    scores16, ids16 = s16.search(q, 5)
    np.testing.assert_allclose(scores16, scores32, atol=1e-3)


class StoreMachine(RuleBasedStateMachine):
    """Random add/remove sequences against a dict model; search must match brute force."""

    def __init__(self):
        super().__init__()
        self.store = EmbeddingStore(DIM, capacity=1)
        self.model: dict[int, np.ndarray] = {}
        self.label: dict[int, int] = {}
        self.rng = np.random.default_rng(0)

    @rule(count=st.integers(0, 40))
    def add(self, count):
        x = unit(self.rng, count)
        for item_id, row in zip(self.store.add(x, labels=np.arange(count) + 7).tolist(), x):
            self.model[item_id] = row
            self.label[item_id] = int(np.argmax(np.all(x == row, axis=1))) + 7

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def remove(self, data):
        keys = sorted(self.model)
        chosen = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=10, unique=True))
        self.store.remove(chosen)
        for item_id in chosen:
            del self.model[item_id]

    @rule(k=st.integers(1, 8))
    def search(self, k):
        q = unit(self.rng, 3)
        scores, ids = self.store.search(q, k)
        assert scores.shape == (3, min(k, len(self.model)))
        if self.model:
            keys = np.array(sorted(self.model))
            brute = q @ np.stack([self.model[i] for i in keys]).T
            best = np.sort(brute, axis=1)[:, ::-1][:, : scores.shape[1]]
            np.testing.assert_allclose(scores, best, atol=1e-5)
            for j in range(3):
                for s, item_id in zip(scores[j], ids[j]):
                    np.testing.assert_allclose(s, q[j] @ self.model[int(item_id)], atol=1e-5)

    @invariant()
    def consistent(self):
        assert len(self.store) == len(self.model)
        assert sorted(self.store.ids.tolist()) == sorted(self.model)
        for row, item_id in enumerate(self.store.ids.tolist()):
            assert self.store.row_of(item_id) == row
            assert self.store.labels[row] == self.label[item_id]
            np.testing.assert_allclose(self.store.vectors[row], self.model[item_id], atol=1e-6)


StoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
test_store_state_machine = StoreMachine.TestCase


def test_a_slot_no_row_fills_has_id_minus_one_not_a_stored_rows_id():
    """A NaN query beats no row: its slots held index -1, which ``ids[-1]`` turned into the last stored row's id."""
    store = EmbeddingStore(DIM)
    stored_ids = store.add(unit(np.random.default_rng(3), 5))
    queries = np.stack([np.full(DIM, np.nan, np.float32), store.vectors[2]])
    scores, ids = store.search(queries, k=3)
    assert ids[0].tolist() == [-1, -1, -1] and np.isneginf(scores[0]).all()
    assert ids[1, 0] == stored_ids[2] and scores[1, 0] == pytest.approx(1.0, abs=1e-5)
