"""EmbeddingLoop: the overlapped loop gives the plain loop's results, in order, and overlaps for real."""

import threading
import time

import numpy as np
import pytest

from edge_reid.embedding_loop import EmbeddingLoop
from edge_reid.matching import Gallery
from edge_reid.preprocess import crop_box


@pytest.fixture(scope="module")
def crop_batches(vtest_frames, detector):
    """Real person crops of vtest.avi in batches of uneven size: one larger than max_batch (16), one empty."""
    crops = []
    for frame in vtest_frames:
        crops += [crop_box(frame, box) for box in detector.detect(frame).boxes]
    assert len(crops) >= 40
    sizes = [5, 20, 0, 3, 9]
    bounds = np.cumsum([0, *sizes])
    return [crops[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _embed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("edge-reid-embed") and t.is_alive()]


def test_overlapped_loop_gives_the_plain_loops_results(embedder, crop_batches):
    plain_gallery = Gallery(embedder.dim, threshold=0.6)
    plain = []
    for index, crops in enumerate(crop_batches):
        embeddings = embedder.embed_crops(crops)
        plain.append((embeddings, plain_gallery.match(embeddings, timestamp=float(index)).identity_ids))

    gallery = Gallery(embedder.dim, threshold=0.6)
    batch_number = iter(range(len(crop_batches)))
    loop = EmbeddingLoop(embedder, lambda e: gallery.match(e, timestamp=float(next(batch_number))))
    results = list(loop.run(crop_batches))

    assert [r.index for r in results] == list(range(len(crop_batches)))
    for result, (embeddings, identity_ids), crops in zip(results, plain, crop_batches):
        assert result.embeddings.shape == (len(crops), embedder.dim)
        np.testing.assert_allclose(result.embeddings, embeddings, atol=1e-6)
        np.testing.assert_array_equal(result.matched.identity_ids, identity_ids)
    assert len(gallery) == len(plain_gallery) >= 5
    assert [i.count for i in gallery.identities] == [i.count for i in plain_gallery.identities]
    assert not _embed_threads()


class _SignallingEmbedder:
    """Delegates to a real Embedder and sets ``started[k]`` when its k-th embed_crops call begins."""

    def __init__(self, embedder, calls: int):
        self.embedder = embedder
        self.started = [threading.Event() for _ in range(calls)]
        self._calls = 0

    def embed_crops(self, crops):
        self.started[self._calls].set()
        self._calls += 1
        return self.embedder.embed_crops(crops)

    @property
    def last_seconds(self):
        return self.embedder.last_seconds


def test_next_batch_is_embedded_while_this_one_is_matched(embedder, crop_batches):
    """Matching batch k waits until batch k + 1's embedding has begun: that can only happen when
    the two overlap (a plain loop would embed k + 1 after this match returns, and the wait would
    time out). No clock is read: the overlap is shown by events, not by durations."""
    signalling = _SignallingEmbedder(embedder, len(crop_batches))
    next_started = []

    def match_waiting_for_the_next_batch(embeddings):
        index = len(next_started)
        if index + 1 < len(crop_batches):
            next_started.append(signalling.started[index + 1].wait(timeout=30))
        else:
            next_started.append(True)
        return len(embeddings)

    loop = EmbeddingLoop(signalling, match_waiting_for_the_next_batch)
    started = time.perf_counter()
    results = list(loop.run(crop_batches))
    elapsed = time.perf_counter() - started
    assert [r.matched for r in results] == [len(b) for b in crop_batches]
    assert all(next_started), f"batches waited for the previous batch's matching: {next_started}"
    assert loop.seconds["preprocess"] > 0 and loop.seconds["embed"] > 0
    # The caller's thread waits and matches in turn, never both: its two totals fit in the time the loop took.
    assert loop.seconds["wait"] + loop.seconds["match"] <= elapsed


def test_a_bad_batch_fails_in_its_turn_after_the_earlier_results(embedder, crop_batches):
    batches = [crop_batches[0], crop_batches[3], [crop_batches[1][0], np.zeros((0, 7, 3), np.uint8)], crop_batches[4]]
    loop = EmbeddingLoop(embedder, lambda e: len(e))
    seen = []
    with pytest.raises(ValueError, match="crop 1"):
        for result in loop.run(batches):
            seen.append(result.index)
    assert seen == [0, 1]
    assert not _embed_threads(), "the worker thread must be stopped"
    assert embedder.embed_crops(crop_batches[3]).shape == (3, embedder.dim)  # the embedder still works


def test_stopping_early_waits_for_the_batch_in_flight(embedder, crop_batches):
    loop = EmbeddingLoop(embedder, lambda e: len(e))
    results = loop.run(crop_batches)
    first = next(results)
    assert first.index == 0 and first.matched == 5
    results.close()  # what `break` in a for loop does
    assert not _embed_threads()
    again = [r.matched for r in loop.run(crop_batches[:2])]  # reusable after stopping
    assert again == [5, 20]


def test_an_error_of_the_batches_comes_after_the_result_of_every_batch_before_it(embedder, crop_batches):
    """The batch taken just before the iterable raised was in flight and was dropped: the plain loop gives it."""
    def batches():
        yield crop_batches[0]
        yield crop_batches[1]
        raise OSError("camera unplugged")

    loop = EmbeddingLoop(embedder, lambda e: len(e))
    seen = []
    with pytest.raises(OSError, match="camera unplugged"):
        for result in loop.run(batches()):
            seen.append((result.index, result.matched))
    assert seen == [(0, 5), (1, 20)]
    assert not _embed_threads()


def test_close_from_another_thread_ends_the_run_at_its_next_batch(embedder, crop_batches):
    """close() from another thread took the running loop's worker away: the run failed with
    AttributeError: 'NoneType' object has no attribute 'submit'."""
    loop = EmbeddingLoop(embedder, lambda e: len(e))
    results = loop.run(crop_batches * 3)
    first = next(results)
    closer = threading.Thread(target=loop.close)
    closer.start()
    closer.join()
    rest = list(results)
    assert first.index == 0 and len(rest) <= 1, "at most the batch already in flight"
    assert not _embed_threads()
    assert [r.matched for r in loop.run(crop_batches[:2])] == [5, 20]  # a later run works as usual


def test_close_before_a_run_starts_ends_it_and_spares_a_later_run(embedder, crop_batches):
    """close() between run() and its first next() was forgotten (the run cleared the flag when it started)."""
    loop = EmbeddingLoop(embedder, lambda e: len(e))
    closed_early = loop.run(crop_batches)
    loop.close()
    later = loop.run(crop_batches[:2])
    assert list(closed_early) == []
    assert [r.matched for r in later] == [5, 20]
    assert not _embed_threads()
