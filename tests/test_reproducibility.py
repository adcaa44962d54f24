"""Reproducibility: the same input and options give the same results, run after run (docs/tracking.md,
"Reproducibility"). Where our own code decides (tracking, identities, outputs, file listings, row order)
results are compared exactly; a tolerance appears only where the backend's float arithmetic may
legitimately round differently (batch size, threads), with the reason at the assertion.

Real assets: vtest.avi, its ground truth and mot17-reid-mini (skipped with a reason when absent)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_reid.matching.gallery_file import read_gallery_file

REPO = Path(__file__).resolve().parents[1]
#: Frames of vtest per run: enough for confirmed tracks, past-frame rows and a dozen identities.
FRAMES = 100
#: Fields of a saved gallery that are wall-clock times (seconds since 1970), for a video file too.
WALL_CLOCK_FIELDS = {"saved_at", "first_seen", "last_seen"}


def _run_cli(folder: Path, vtest: Path, hash_seed: str) -> dict[str, Path]:
    """One `edge-reid run` in its own process (its own hash seed: set and dict orders of str keys differ)."""
    folder.mkdir()
    out = {"mot": folder / "m.txt", "events": folder / "e.jsonl", "gallery": folder / "g.edgereid"}
    command = [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest), "--backend", "onnxruntime",
               "--max-frames", str(FRAMES), "--mot", str(out["mot"]), "--events", str(out["events"]),
               "--gallery", str(out["gallery"])]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_WAIT_POLICY": "PASSIVE"})
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _without_wall_clock(header: dict) -> dict:
    kept = {k: v for k, v in header.items() if k not in WALL_CLOCK_FIELDS}
    kept["identities"] = [{k: v for k, v in i.items() if k not in WALL_CLOCK_FIELDS} for i in header["identities"]]
    return kept


def test_two_identical_runs_write_identical_outputs_and_gallery(tmp_path, vtest_path):
    first = _run_cli(tmp_path / "first", vtest_path, "1")
    second = _run_cli(tmp_path / "second", vtest_path, "2")
    assert first["mot"].read_bytes() == second["mot"].read_bytes(), "MOT rows differ between two identical runs"
    assert first["events"].read_bytes() == second["events"].read_bytes(), "events differ between two identical runs"
    assert b'"past_frame": true' in first["events"].read_bytes(), "the run should be long enough for past-frame lines"
    header_a, payload_a = read_gallery_file(first["gallery"])
    header_b, payload_b = read_gallery_file(second["gallery"])
    assert len(header_a["identities"]) >= 5
    assert payload_a.tobytes() == payload_b.tobytes(), "the gallery's embeddings differ between two identical runs"
    # Identities, counts, names and settings are the same; only the wall-clock times are not.
    assert _without_wall_clock(header_a) == _without_wall_clock(header_b)
    assert {"first_seen", "last_seen"} <= set(header_a["identities"][0]) and "saved_at" in header_a


def _key(results) -> list[tuple]:
    """Everything a FrameResult says, past-frame boxes included, as comparable tuples."""
    return [
        (r.frame_index, r.timestamp_s,
         tuple((p.bbox, p.score, p.track_id, p.identity_id, p.name, p.similarity, p.is_new, p.state) for p in r.people),
         tuple((q.frame_index, q.bbox, q.score, q.track_id, q.identity_id, q.kind) for q in r.past))
        for r in results
    ]


def _frames(vtest: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(vtest))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        assert ok, "vtest.avi ended early"
        frames.append(image)
    capture.release()
    return frames


@pytest.fixture(scope="module")
def first_run(vtest_path):
    """A fresh Pipeline and the results of its first run, frames decoded and detected ahead in a thread
    (prefetch 2, the default)."""
    from edge_reid import Pipeline

    with Pipeline() as pipeline:
        yield pipeline, _key(pipeline.run(str(vtest_path), max_frames=FRAMES, prefetch=2))


def test_fresh_pipelines_agree_with_and_without_prefetch_and_by_process(first_run, vtest_path):
    from edge_reid import Pipeline, open_source

    _, first_pipeline_results = first_run
    assert sum(len(r[2]) for r in first_pipeline_results) > 300 and any(r[3] for r in first_pipeline_results)
    with Pipeline() as pipeline:  # everything in one thread: no decoding thread racing the loop
        assert _key(pipeline.run(str(vtest_path), max_frames=FRAMES, prefetch=0)) == first_pipeline_results
    with Pipeline() as pipeline, open_source(str(vtest_path)) as source:  # frames handed in one by one, with their times
        by_hand = [pipeline.process(f.image, f.timestamp_s, f.index) for _, f in zip(range(FRAMES), source)]
    assert _key(by_hand) == first_pipeline_results


def test_a_second_run_on_one_pipeline_restarts_tracks_and_refinds_people(first_run, vtest_path):
    pipeline, first = first_run
    known = {p[3] for r in first for p in r[2]}
    second = _key(pipeline.run(str(vtest_path), max_frames=FRAMES))
    # No state of the first run but the gallery leaks into the second: the same boxes, scores and
    # track ids (restarting from 1), frame by frame.
    assert [[p[:3] for p in r[2]] for r in second] == [[p[:3] for p in r[2]] for r in first]
    identities = {p[3] for r in second for p in r[2]}
    # The gallery carries the people over: some are re-found under their old identity, the others get
    # new ids after the first run's (ids are never reused).
    refound, new = identities & known, identities - known
    assert refound and all(i > max(known) for i in new)


def _vtest_crops(vtest: Path, gt_dir: Path, count: int) -> list[np.ndarray]:
    """Ground-truth person crops of every 10th vtest frame (real images: what batching sees)."""
    gt = np.loadtxt(gt_dir / "gt" / "gt.txt", delimiter=",", ndmin=2)
    crops = []
    for index, image in enumerate(_frames(vtest, 200)):
        if (index + 1) % 10:
            continue
        for x, y, w, h in gt[gt[:, 0] == index + 1][:, 2:6]:
            x1, y1 = int(max(0, x)), int(max(0, y))
            x2, y2 = int(min(image.shape[1], x + w)), int(min(image.shape[0], y + h))
            if x2 - x1 > 4 and y2 - y1 > 8:
                crops.append(image[y1:y2, x1:x2].copy())
    assert len(crops) >= count
    return crops[:count]


def test_an_embedding_does_not_depend_on_its_batch_mates_or_threads(vtest_path, vtest_gt_dir):
    from edge_reid.embedder import Embedder

    crops = _vtest_crops(vtest_path, vtest_gt_dir, 40)
    results = {}
    for threads in (1, 2):
        embedder = Embedder(backend="onnxruntime", max_batch=32, threads=threads)
        try:
            # Our code: each crop's input row is the same alone and among others (exact).
            alone_input = np.zeros((1, 3, embedder.spec.height, embedder.spec.width), np.float32)
            batch_input = np.zeros((len(crops), 3, embedder.spec.height, embedder.spec.width), np.float32)
            embedder.preprocessor.write_crops(crops[:32], batch_input)
            for index in (0, 7, 31):
                embedder.preprocessor.write_crops([crops[index]], alone_input)
                assert np.array_equal(alone_input[0], batch_input[index])
            results[threads] = {
                "alone": np.concatenate([embedder.embed_crops([c]) for c in crops]),
                "batch 8": np.concatenate([embedder.embed_crops(crops[i:i + 8]) for i in range(0, len(crops), 8)]),
                "batch 32 + 8": embedder.embed_crops(crops),  # two sub-batches
                "reversed": embedder.embed_crops(crops[::-1])[::-1],  # other mates, other positions
            }
        finally:
            embedder.close()
    reference = results[1]["alone"]
    for threads, runs in results.items():
        for name, embeddings in runs.items():
            # Backend arithmetic: a runtime may block a convolution or GEMM differently for another batch
            # size or thread count, which rounds the last bits differently (ONNX Runtime's CPU kernels
            # measured bit-identical here; its graph levels differ by up to 1.0e-6). Far below that, a
            # crop's embedding given to another row of the batch would differ by ~0.5.
            assert np.abs(embeddings - reference).max() <= 1e-5, (threads, name)
            assert (embeddings * reference).sum(axis=1).min() >= 1 - 1e-6, (threads, name)


def test_eval_does_not_depend_on_the_folder_listing_order(mot17_dir, monkeypatch):
    from edge_reid.data.market1501 import load_market1501
    from edge_reid.embedder import Embedder
    from edge_reid.evaluation.market_eval import evaluate_market

    listed = load_market1501(mot17_dir)
    with Embedder(backend="onnxruntime") as embedder:
        as_listed = evaluate_market(embedder, listed)
        real_iterdir = Path.iterdir
        # A file system that lists in another order (creation order, hash order): here the reverse of the names.
        monkeypatch.setattr(Path, "iterdir", lambda self: iter(sorted(real_iterdir(self), reverse=True)))
        reversed_listing = load_market1501(mot17_dir)
        assert reversed_listing.query.paths == listed.query.paths
        assert reversed_listing.gallery.paths == listed.gallery.paths
        again = evaluate_market(embedder, reversed_listing)
    # Exact: ties in distance are ranked by gallery order, so the order of the files is part of the score.
    assert np.array_equal(again.scores.cmc, as_listed.scores.cmc) and again.scores.mAP == as_listed.scores.mAP
    assert again.scores.num_valid_queries == as_listed.scores.num_valid_queries > 0


def test_eval_mot_does_not_depend_on_the_order_of_result_rows(vtest_gt_dir):
    pytest.importorskip("trackeval", reason="eval-mot needs TrackEval: pip install 'edge-reid[mot]'")
    from edge_reid.evaluation.mot import evaluate_mot

    gt = np.loadtxt(vtest_gt_dir / "gt" / "gt.txt", delimiter=",", ndmin=2)
    rng = np.random.default_rng(0)
    # A tracker-like result from the ground truth: boxes moved a little, a tenth of them missing, and two
    # people's ids swapped half way (ID switches to score), in frame order.
    result = gt[rng.random(len(gt)) > 0.1][:, :10].copy()
    result[:, 2:6] += rng.normal(0.0, 2.0, (len(result), 4))
    result[:, 6] = 1.0
    late = result[:, 0] > 400
    first, second = np.unique(result[:, 1])[:2]
    swapped = late & np.isin(result[:, 1], (first, second))
    result[swapped, 1] = np.where(result[swapped, 1] == first, second, first)
    in_order = evaluate_mot(result, vtest_gt_dir)
    shuffled = evaluate_mot(result[rng.permutation(len(result))], vtest_gt_dir)
    assert in_order.id_switches > 0 and 0 < in_order.hota < 100
    assert dataclasses.asdict(shuffled) == dataclasses.asdict(in_order)
    assert dataclasses.asdict(evaluate_mot(result, vtest_gt_dir)) == dataclasses.asdict(in_order)
