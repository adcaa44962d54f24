"""Gallery: bounded histories, best-of-history scoring, exact one-to-one matching, pruning, save/load."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_reid.errors import DataError
from edge_reid.matching import Gallery, assign_unique
from edge_reid.matching.gallery_file import write_gallery_file


def unit(rng, rows, dim):
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force_similarity(gallery: Gallery, queries: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(N, M) best-of-history similarity to every identity, computed directly."""
    ids = [i.identity_id for i in gallery.identities]
    sim = np.stack([(queries @ gallery.embeddings(i).T).max(axis=1) for i in ids], axis=1)
    return sim, ids


def random_gallery(seed: int, identities: int, dim: int = 16, history: int = 3) -> Gallery:
    rng = np.random.default_rng(seed)
    gallery = Gallery(dim, threshold=0.2, history_size=history, novelty=1.0)
    for n in range(identities):
        if n % 3 == 0:
            gallery.enroll(f"person{n}", unit(rng, int(rng.integers(1, 5)), dim), timestamp=float(n))
        else:
            gallery.add(unit(rng, int(rng.integers(1, history + 1)), dim), timestamp=float(n))
    return gallery


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), identities=st.integers(1, 40), queries=st.integers(1, 8), k=st.integers(1, 50))
def test_search_is_exact_best_of_history(seed, identities, queries, k):
    gallery = random_gallery(seed, identities)
    q = unit(np.random.default_rng(seed + 1), queries, gallery.dim)
    scores, ids = gallery.search(q, k)
    sim, all_ids = brute_force_similarity(gallery, q)
    assert scores.shape == (queries, min(k, identities))
    expected = np.sort(sim, axis=1)[:, ::-1][:, : scores.shape[1]]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    for row in range(queries):
        for score, identity_id in zip(scores[row], ids[row]):
            assert sim[row, all_ids.index(identity_id)] == pytest.approx(score, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), identities=st.integers(1, 30), queries=st.integers(1, 10))
def test_match_equals_assignment_on_the_full_matrix(seed, identities, queries):
    gallery = random_gallery(seed, identities)
    rng = np.random.default_rng(seed + 2)
    # Queries near existing identities' embeddings, so that several compete for the same identity.
    picks = rng.integers(0, identities, queries)
    q = np.stack([gallery.embeddings(gallery.identities[p].identity_id)[0] for p in picks])
    q = q + 0.3 * unit(rng, queries, gallery.dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    sim, all_ids = brute_force_similarity(gallery, q)
    expected = [all_ids[c] if c >= 0 else -1 for c in assign_unique(sim, gallery.threshold)]
    result = gallery.match(q, update=False, create=False)
    assert result.identity_ids.tolist() == expected
    matched = result.identity_ids >= 0
    assert len(set(result.identity_ids[matched].tolist())) == matched.sum()


def test_history_is_bounded_and_enrolled_embeddings_stay():
    rng = np.random.default_rng(0)
    gallery = Gallery(8, threshold=-1.0, history_size=3, novelty=1.0)
    photos = unit(rng, 2, 8)
    alice = gallery.enroll("Alice", photos, timestamp=0)
    sightings = unit(rng, 10, 8)
    for t, s in enumerate(sightings, start=1):
        assert gallery.match(s[None], timestamp=t).identity_ids.tolist() == [alice]
    assert gallery.embedding_counts(alice) == (2, 3)
    np.testing.assert_allclose(gallery.embeddings(alice), np.vstack([photos, sightings[-3:]]), atol=1e-6)
    assert len(gallery.store) == 5
    assert gallery.get(alice).count == 12 and gallery.get(alice).last_seen == 10


def test_identity_scored_by_best_view_not_mean():
    gallery = Gallery(2, threshold=0.95, novelty=1.0)
    front, side = np.float32([1, 0]), np.float32([0, 1])
    person = gallery.add(np.stack([front, side]))
    near_side = np.float32([[0.1, 1]]) / np.linalg.norm([0.1, 1])
    result = gallery.match(near_side, update=False)
    # best view: cos(near_side, side) = 0.995; the mean template (0.707, 0.707) would give 0.77.
    assert result.identity_ids.tolist() == [person] and result.similarities[0] == pytest.approx(0.995, abs=1e-3)


def test_enroll_same_name_extends_identity_and_validates():
    rng = np.random.default_rng(1)
    gallery = Gallery(8)
    first = gallery.enroll("Bob", unit(rng, 2, 8))
    assert gallery.enroll("Bob", unit(rng, 3, 8)) == first and gallery.embedding_counts(first) == (5, 0)
    with pytest.raises(ValueError, match="name"):
        gallery.enroll(" ", unit(rng, 1, 8))
    with pytest.raises(ValueError, match="NaN"):
        gallery.enroll("Carol", np.full((1, 8), np.nan, np.float32))
    assert gallery.find("Carol") is None and len(gallery) == 1


def test_remove_and_ids_never_reused():
    rng = np.random.default_rng(2)
    gallery = Gallery(8)
    a, b = gallery.add(unit(rng, 1, 8)), gallery.add(unit(rng, 1, 8))
    gallery.remove(b)
    assert b not in gallery and len(gallery.store) == 1
    assert gallery.add(unit(rng, 1, 8)) == b + 1
    with pytest.raises(KeyError):
        gallery.remove(b)
    assert a in gallery


def test_prune_unseen_identities_keeps_named_ones():
    rng = np.random.default_rng(3)
    gallery = Gallery(8)
    old = gallery.add(unit(rng, 1, 8), timestamp=0)
    recent = gallery.add(unit(rng, 1, 8), timestamp=90)
    named = gallery.enroll("Dana", unit(rng, 1, 8), timestamp=0)
    assert gallery.prune(60, now=100) == [old]
    assert {i.identity_id for i in gallery.identities} == {recent, named}
    assert gallery.prune(60, now=100, keep_named=False) == [named]
    assert len(gallery.store) == 1


def test_prune_never_removes_people_just_seen_or_held():
    rng = np.random.default_rng(3)
    gallery = Gallery(8)
    old = gallery.add(unit(rng, 1, 8), timestamp=0)
    just_seen = gallery.add(unit(rng, 1, 8), timestamp=95)
    held = gallery.add(unit(rng, 1, 8), timestamp=0)
    assert gallery.prune(0, now=100, keep=[held]) == [old]  # seen 5 s ago: kept whatever max_age_s says
    assert {i.identity_id for i in gallery.identities} == {just_seen, held}
    assert gallery.prune(0, now=120, keep=[held]) == [just_seen]


def test_observe_records_a_sighting_and_stores_only_novel_alike_views():
    gallery = Gallery(2, threshold=0.6, novelty=0.9)
    person = gallery.add(np.array([1.0, 0.0], np.float32), timestamp=0)
    assert gallery.observe(person, timestamp=5) is None and gallery.get(person).last_seen == 5
    assert gallery.observe(person, np.array([1.0, 0.0], np.float32), timestamp=6) == pytest.approx(1.0)
    assert gallery.embedding_counts(person) == (0, 1)  # a near-duplicate is not stored
    turned = np.array([0.8, 0.6], np.float32)
    assert gallery.observe(person, turned, timestamp=7) == pytest.approx(0.8)
    assert gallery.embedding_counts(person) == (0, 2)  # novel yet alike: stored
    someone_else = np.array([0.0, 1.0], np.float32)
    assert gallery.observe(person, someone_else, timestamp=8) == pytest.approx(0.6)  # best over the stored views
    assert gallery.observe(person, np.array([-1.0, 0.0], np.float32), timestamp=9) == pytest.approx(0.0)
    assert gallery.embedding_counts(person) == (0, 3)  # the view at 0.6 stored; one below the threshold never
    assert gallery.get(person).count == 6 and gallery.get(person).last_seen == 9
    np.testing.assert_allclose(gallery.similarity(person, np.array([[1.0, 0.0]], np.float32)), [1.0])


def test_open_creates_or_loads(tmp_path):
    path = tmp_path / "g.edgereid"
    with pytest.raises(DataError, match="does not exist"):
        Gallery.open(path, 8, create=False)
    gallery = Gallery.open(path, 8, model_id="a" * 64, model_name="m.onnx")
    assert len(gallery) == 0 and gallery.model_id == "a" * 64
    gallery.add(np.ones(8, np.float32))
    gallery.save(path)
    assert len(Gallery.open(path, 8, model_id="a" * 64)) == 1
    with pytest.raises(DataError, match="m.onnx"):
        Gallery.open(path, 8, model_id="b" * 64, model_name="other.onnx")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_save_load_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(4)
    gallery = Gallery(16, threshold=0.5, history_size=4, novelty=0.8, dtype=dtype, model_id="m" * 64, model_name="osnet")
    gallery.enroll("Eve", unit(rng, 3, 16), timestamp=5)
    for t in range(6):
        gallery.match(unit(rng, 3, 16), timestamp=10 + t)
    gallery.remove(gallery.identities[1].identity_id)
    path = tmp_path / "g.edgereid"
    gallery.save(path)
    loaded = Gallery.load(path, model_id="m" * 64)
    assert loaded.metadata() == gallery.metadata()
    assert loaded.dtype == dtype
    for identity in gallery.identities:
        np.testing.assert_array_equal(loaded.embeddings(identity.identity_id), gallery.embeddings(identity.identity_id))
    q = unit(rng, 4, 16)
    a, b = gallery.match(q, timestamp=50), loaded.match(q, timestamp=50)
    assert a.identity_ids.tolist() == b.identity_ids.tolist()  # incl. the same new ids
    np.testing.assert_array_equal(a.similarities, b.similarities)


def test_empty_gallery_round_trip(tmp_path):
    Gallery(4).save(tmp_path / "g")
    assert len(Gallery.load(tmp_path / "g")) == 0


def test_gallery_from_another_model_refused(tmp_path):
    gallery = Gallery(4, model_id="a" * 64, model_name="osnet_x0_25_msmt17.onnx")
    gallery.add(np.float32([1, 0, 0, 0]))
    gallery.save(tmp_path / "g.edgereid")
    with pytest.raises(DataError, match=r"made with osnet_x0_25_msmt17.onnx .*this run uses other.onnx.*not comparable"):
        Gallery.load(tmp_path / "g.edgereid", model_id="b" * 64, model_name="other.onnx")
    assert len(Gallery.load(tmp_path / "g.edgereid", model_id="a" * 64)) == 1


def test_corrupt_gallery_is_an_error_and_left_alone(tmp_path):
    path = tmp_path / "g.edgereid"
    gallery = Gallery(4)
    gallery.add(np.float32([1, 0, 0, 0]))
    gallery.save(path)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt"):
        Gallery.load(path)
    assert path.read_bytes() == bytes(blob)


def test_inconsistent_header_is_a_data_error(tmp_path):
    path = tmp_path / "g.edgereid"
    gallery = Gallery(4)
    gallery.add(np.float32([1, 0, 0, 0]))
    header = gallery.metadata()
    header["identities"][0]["recent"] = 2  # claims 2 embeddings, payload has 1
    write_gallery_file(path, header, np.float32([[1, 0, 0, 0]]))
    with pytest.raises(DataError, match="inconsistent"):
        Gallery.load(path)
    header["kind"] = "something else"
    write_gallery_file(path, header, np.float32([[1, 0, 0, 0]]))
    with pytest.raises(DataError, match="not a gallery"):
        Gallery.load(path)
