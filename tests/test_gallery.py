import numpy as np
import pytest

from edge_reid.matching import Gallery, assign_unique


def _unit(vectors):
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_assign_unique_never_reuses_an_identity():
    # Both detections are most similar to identity 0; only one may take it.
    similarity = np.array([[0.95, 0.70], [0.90, 0.20]], np.float32)
    assert assign_unique(similarity, 0.5).tolist() == [1, 0]  # 0.70 + 0.90 beats 0.95 + nothing
    assert assign_unique(similarity, 0.8).tolist() == [0, -1]  # 0.70 is below threshold
    assert assign_unique(np.zeros((3, 0), np.float32), 0.5).tolist() == [-1, -1, -1]
    assert assign_unique(np.full((2, 2), 0.1, np.float32), 0.5).tolist() == [-1, -1]


def test_same_frame_duplicates_get_distinct_identities():
    gallery = Gallery(dim=4, threshold=0.5)
    person = _unit([[1, 0, 0, 0]])
    first = gallery.match(person, timestamp=0.0)
    assert first.is_new.tolist() == [True] and first.identity_ids.tolist() == [1]
    # Two identical detections in one frame: one keeps identity 1, the other becomes new.
    both = gallery.match(np.repeat(person, 2, axis=0), timestamp=1.0)
    assert sorted(both.identity_ids.tolist()) == [1, 2]
    assert both.is_new.sum() == 1
    assert len(set(both.identity_ids.tolist())) == 2


def test_threshold_history_and_metadata():
    gallery = Gallery(dim=2, threshold=0.9, novelty=0.99)
    gallery.match(_unit([[1, 0]]), timestamp=0.0)
    near = _unit([[1, 0.2]])  # cos = 0.98: same person, and novel enough (< 0.99) to join the history
    result = gallery.match(near, timestamp=2.5)
    assert result.identity_ids.tolist() == [1] and result.similarities[0] == pytest.approx(0.98, abs=1e-3)
    np.testing.assert_allclose(gallery.embeddings(1), np.vstack([_unit([[1, 0]]), near]), atol=1e-6)
    identity = gallery.identities[0]
    assert (identity.first_seen, identity.last_seen, identity.count) == (0.0, 2.5, 2)
    again = gallery.match(near, timestamp=3.0)  # cos 1.0 >= novelty: counted, not stored again
    assert again.identity_ids.tolist() == [1] and gallery.embedding_counts(1) == (0, 2)
    far = gallery.match(_unit([[0, 1]]), timestamp=3.0)
    assert far.is_new.tolist() == [True] and len(gallery) == 2
    untouched = gallery.match(_unit([[-1, 0]]), create=False)
    assert untouched.identity_ids.tolist() == [-1] and len(gallery) == 2


def test_bad_shapes_rejected():
    gallery = Gallery(dim=8)
    with pytest.raises(ValueError, match=r"\(8,\)"):
        gallery.add(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        gallery.match(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="k must be >= 1"):
        gallery.search(np.zeros((1, 8), np.float32), 0)
    for fractional in (2.9, True):  # 2.9 was searched as 2 without a word; the matcher itself refuses it
        with pytest.raises(ValueError, match="k must be >= 1 identities per query \\(an integer\\)"):
            gallery.search(np.eye(8, dtype=np.float32)[:1], fractional)
    gallery.add(np.eye(8, dtype=np.float32)[0])
    with pytest.raises(ValueError, match="embedding 0 has length 10, not 1: L2-normalise"):
        gallery.match(10 * np.eye(8, dtype=np.float32)[:1])  # a similarity of 10 would match anyone


@pytest.mark.parametrize("keyword, value", [("threshold", 5.0), ("threshold", float("nan")), ("novelty", -1.5)])
def test_similarity_thresholds_outside_cosine_range_rejected(keyword, value):
    """A threshold above 1 would silently make every sighting a new identity."""
    with pytest.raises(ValueError, match=f"{keyword} must be a cosine similarity in \\[-1, 1\\]"):
        Gallery(dim=8, **{keyword: value})


def test_enrolling_nan_into_an_existing_name_is_refused_not_dropped():
    """For a name already enrolled, a NaN row failed the same-view comparison (NaN < x is False) and vanished
    without a word, while the same row for a new name was refused."""
    gallery = Gallery(4)
    ann = gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:1])
    for rows in (np.full((1, 4), np.nan), np.array([[0, 1, 0, 0], [np.inf, 0, 0, 0]])):
        with pytest.raises(ValueError, match="NaN or Inf"):
            gallery.enroll("Ann", rows.astype(np.float32))
    assert gallery.embedding_counts(ann) == (1, 0)


def test_a_refused_embedding_uses_up_no_identity_id():
    """Ids count up from 1 in order of creation: an add or enroll refused for its embedding created nothing."""
    gallery = Gallery(4)
    for rows, message in ((np.zeros((1, 4), np.float32), "all-zero"), (np.full((1, 4), np.nan, np.float32), "NaN or Inf")):
        with pytest.raises(ValueError, match=message):
            gallery.add(rows, timestamp=0.0)
    with pytest.raises(ValueError, match="all-zero"):
        gallery.enroll("Ann", np.zeros((1, 4), np.float32), timestamp=0.0)
    assert len(gallery) == 0
    assert gallery.add(np.eye(4, dtype=np.float32)[:1], timestamp=0.0) == 1


def test_a_name_in_composed_and_decomposed_unicode_is_one_person():
    """"José" typed with "é" (NFC) and as "e" + a combining accent (NFD, as some keyboards and file systems give
    it) became two identities named alike on screen, each refusing the other in the ratio test."""
    composed, decomposed = "Jos\u00e9", "Jose\u0301"
    gallery = Gallery(4)
    first = gallery.enroll(composed, np.eye(4, dtype=np.float32)[:1])
    assert gallery.enroll(decomposed, np.eye(4, dtype=np.float32)[1:2]) == first
    assert [i.identity_id for i in gallery.named(decomposed)] == [first] and len(gallery) == 1
    stranger = gallery.add(np.eye(4, dtype=np.float32)[2], name=f" {decomposed} ")
    gallery.rename(stranger, decomposed)
    assert gallery.get(stranger).name == composed  # stored composed, whichever form was typed
    assert [i.identity_id for i in gallery.named(composed)] == [first, stranger]


def test_observe_takes_exactly_one_embedding_and_a_threshold_in_range():
    """observe() scored row 0 of an (N, D) input and dropped the rest; threshold=nan or 5 stored nothing, silently."""
    gallery = Gallery(4)
    ann = gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:1])
    with pytest.raises(ValueError, match=r"one embedding.*\(2, 4\)"):
        gallery.observe(ann, np.eye(4, dtype=np.float32)[:2], timestamp=1.0)
    for threshold in (float("nan"), 5.0):
        with pytest.raises(ValueError, match="threshold must be a cosine similarity in"):
            gallery.observe(ann, np.eye(4, dtype=np.float32)[0], timestamp=1.0, threshold=threshold)
    assert gallery.observe(ann, np.eye(4, dtype=np.float32)[:1], timestamp=1.0) == pytest.approx(1.0)


def test_observe_stores_a_view_exactly_at_the_threshold_as_match_does():
    """observe() compared in float64, so a view at float32(0.7) == threshold 0.7 read 0.69999999 < 0.7 and was
    not stored, while match() (float32) stored the same view."""
    threshold = 0.7
    stored = np.array([1, 0, 0, 0], np.float32)
    rng = np.random.default_rng(1)
    for _ in range(100000):
        y = np.sqrt(np.float32(1) - np.float32(threshold) ** 2) + np.float32(rng.normal() * 1e-6)
        view = np.array([threshold, y, 0, 0], np.float32)
        if abs(np.linalg.norm(view.astype(np.float64)) - 1) < 1e-7 and np.float32(view @ stored) == np.float32(threshold):
            break
    else:
        raise AssertionError("no view exactly at the threshold: the test would not test the boundary")
    for how in ("match", "observe"):
        gallery = Gallery(4, threshold=threshold, novelty=0.9)
        identity = gallery.add(stored, timestamp=0)
        if how == "match":
            assert gallery.match(view[None], timestamp=1).identity_ids.tolist() == [identity]
        else:
            gallery.observe(identity, view, timestamp=1)
        assert gallery.embedding_counts(identity) == (0, 2), how


def test_one_gallery_shared_by_threads_stays_consistent():
    """A kiosk's UI thread adds and removes people while a camera thread matches (the audit's case:
    IndexError/KeyError from inside the store as rows moved under a search); every method holds
    ``Gallery.lock``, and ``with gallery.lock:`` makes several calls one step."""
    import threading

    rng = np.random.default_rng(0)
    dim = 512

    def unit(n):
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    gallery = Gallery(dim, history_size=8, novelty=1.0)
    people = unit(40)
    for person in people:
        gallery.add(person)
    visitors = unit(30)
    errors, wrong, stop = [], [], threading.Event()

    def ui():
        try:
            while not stop.is_set():
                ids = [gallery.add(v) for v in visitors]
                for identity_id in ids:
                    gallery.remove(identity_id)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(repr(exc))

    thread = threading.Thread(target=ui)
    thread.start()
    try:
        for step in range(1500):
            result = gallery.match(people[step % 40][None, :], update=False, create=False)
            if result.identity_ids[0] != step % 40 + 1:
                wrong.append(step)
            with gallery.lock:  # two calls as one step: the count cannot change between them
                assert len(gallery) == len(gallery.identities)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and wrong == []


def test_a_gallery_pickles_and_deep_copies_with_a_lock_of_its_own():
    """The lock (threads) made pickling and copy.deepcopy fail: a snapshot or a gallery handed to a
    worker process must still work."""
    import copy
    import pickle

    gallery = Gallery(4)
    first = gallery.add(np.array([1, 0, 0, 0], np.float32), name="ada")
    for copied in (pickle.loads(pickle.dumps(gallery)), copy.deepcopy(gallery)):
        assert copied.get(first).name == "ada" and copied.lock is not gallery.lock
        with copied.lock:
            copied.add(np.array([0, 1, 0, 0], np.float32))
        assert len(copied) == 2 and len(gallery) == 1


def test_novel_views_refuses_rows_not_of_unit_length():
    """The novelty test compares inner products: at half length the same view twice was kept twice, at double
    length a different view (cosine 0.71) was dropped. Refused, as every other comparison by inner product is."""
    gallery = Gallery(dim=8)
    a, b = np.eye(8, dtype=np.float32)[0], _unit([[1, 1, 0, 0, 0, 0, 0, 0]])[0]
    assert len(gallery.novel_views(np.stack([a, a]))) == 1 and len(gallery.novel_views(np.stack([a, b]))) == 2
    for scaled in (0.5 * np.stack([a, a]), 2.0 * np.stack([a, b])):
        with pytest.raises(ValueError, match="embedding 0 has length .*, not 1: L2-normalise"):
            gallery.novel_views(scaled)
    search = gallery.search  # k as numpy's integer still works
    gallery.add(a)
    assert search(a[None], np.int64(1))[1].tolist() == [[1]]


@pytest.mark.parametrize("method", ["add", "enroll", "observe", "match", "prune"])
def test_a_time_the_gallery_file_cannot_hold_is_refused_as_it_comes_in(method, tmp_path):
    """Defect: add/enroll/observe/match/prune took any time (negative, NaN, milliseconds or nanoseconds since
    1970, text): the gallery saved, and Gallery.load then refused the file. Refused at the call, naming the value,
    before anything changes; a time in seconds still saves and loads."""
    person = _unit([[1, 0, 0, 0]])

    def call(gallery, when):
        if method == "add":
            return gallery.add(person, timestamp=when)
        if method == "enroll":
            return gallery.enroll("Ann", person, timestamp=when)
        if method == "observe":
            return gallery.observe(1, person[0], timestamp=when)
        if method == "match":
            return gallery.match(_unit([[0, 1, 0, 0]]), timestamp=when)
        return gallery.prune(1.0, now=when, keep_named=False)

    gallery = Gallery(dim=4)
    gallery.add(person, timestamp=1.7e9)
    before = gallery.metadata()
    saved = tmp_path / "g.edgereid"
    cases = [
        (1.7e12, ValueError, r"1700000000000\.0 s is after the year 5138: it looks like milliseconds or nanoseconds since 1970, but seconds are expected"),
        (1.7e18, ValueError, r"looks like milliseconds or nanoseconds since 1970"),
        (-1.0, ValueError, r"seconds since 1970, from 0 to 1e\+11, got -1\.0: before 1970"),
        (float("nan"), ValueError, r"finite number of seconds, got nan"),
        (float("inf"), ValueError, r"finite number of seconds, got inf"),
        ("0.1", TypeError, r"must be seconds \(a number\), got '0\.1'"),
        (True, TypeError, r"must be seconds \(a number\), got True"),
    ]
    for when, error, message in cases:
        with pytest.raises(error, match=message):
            call(gallery, when)
        assert gallery.metadata() == before  # nothing changed
    gallery.save(saved)
    assert Gallery.load(saved).metadata() == before
    for when in (0.0, np.float32(10.0), np.int64(1_700_000_000), 1e11):  # seconds, numpy's numbers included
        call(gallery, when)
    gallery.save(saved)
    assert Gallery.load(saved).metadata() == gallery.metadata()
