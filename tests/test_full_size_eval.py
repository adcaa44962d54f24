"""``edge-reid eval`` at the published data sets' size: memory bounded by the (Q, G) result, a bar for each
long stage, the same numbers as the reference. Small inputs here exercise the code paths that the full-size
measurements in docs/benchmarks.md ("Evaluation at full data-set size") ran."""

import tracemalloc

import cv2
import numpy as np
import pytest

from edge_reid.evaluation import metrics, rerank
from edge_reid.evaluation.metrics import cosine_distance, evaluate_market1501
from edge_reid.evaluation.rerank import re_ranking


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _peak_bytes(function, *args, **kwargs):
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class _PixelEmbedder:
    """Stand-in for an Embedder: a crop's embedding is its pixels, centred and L2-normalised."""

    dim = 24

    def embed_crops(self, crops):
        vectors = np.stack([crop.reshape(-1).astype(np.float32) - 127.5 for crop in crops])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _market_folder(root, persons=60, views=20, seed=0):
    """Market-1501 layout of 1 x 8 pixel crops: one query per person (camera 1), ``views`` gallery views on
    cameras 2..6, 40 distractors and 30 junk crops."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(40, 216, size=(persons, 24))
    crop = lambda person: np.clip(centres[person] + rng.normal(0, 60, 24), 0, 255).astype(np.uint8).reshape(1, 8, 3)
    (root / "query").mkdir(parents=True)
    (root / "bounding_box_test").mkdir()
    for p in range(persons):
        cv2.imwrite(str(root / "query" / f"{p + 1:04d}_c1s1_{p:06d}_00.png"), crop(p))
        for v in range(views):
            cv2.imwrite(str(root / "bounding_box_test" / f"{p + 1:04d}_c{v % 5 + 2}s1_{v:06d}_{p % 100:02d}.png"), crop(p))
    for i in range(40):
        cv2.imwrite(str(root / "bounding_box_test" / f"0000_c{i % 6 + 1}s1_{i:06d}_00.png"), crop(i % persons))
    for i in range(30):
        cv2.imwrite(str(root / "bounding_box_test" / f"-1_c{i % 6 + 1}s1_{i:06d}_00.png"), crop(i % persons))
    return root


def test_rerank_holds_no_full_distance_matrix(tmp_path, monkeypatch):
    """Defect: ``eval --rerank`` built the (Q+G)^2 float32 matrix besides a (G, G) one: 35 GB + 27 GB for
    MSMT17 (11659 queries, 82161 gallery images), a MemoryError on a 24 GB machine after all the embedding.
    Now the distances are computed from the embeddings a block of rows at a time: the peak stays well under
    one (Q+G)^2 float32 matrix."""
    from edge_reid.data.market1501 import load_market1501
    from edge_reid.evaluation.market_eval import evaluate_market

    dataset = load_market1501(_market_folder(tmp_path / "m", persons=50, views=18))
    n = len(dataset.query) + len(dataset.gallery) - 30  # junk leaves before any distance
    monkeypatch.setattr(rerank, "BLOCK_ELEMENTS", 64 * n, raising=False)  # blocks of 64 rows, as at full size
    result, peak = _peak_bytes(evaluate_market, _PixelEmbedder(), dataset, rerank=True)
    assert result.rerank and result.scores.num_valid_queries == 50
    assert peak < 0.75 * 4 * n * n, f"peak {peak} bytes for N={n}: a dense (N, N) float32 matrix is {4 * n * n}"


def test_rerank_from_embeddings_gives_the_dense_numbers(tmp_path):
    """The blockwise re-ranking gives the dense implementation's (the reference's, tests/test_rerank.py) distances
    and scores, on clustered data with distractors, whatever the block size."""
    from edge_reid.evaluation.rerank import re_ranking_embeddings, re_ranking_steps

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(30, 16))
    gallery = _unit(np.repeat(centres, 6, 0) + rng.normal(size=(180, 16)) * 0.8)
    query = _unit(centres + rng.normal(size=(30, 16)) * 0.8)
    dense = re_ranking(cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery))
    for block_elements in (1, 210 * 7, 10**9):  # one row, seven rows, all rows per block
        steps = []
        ours = re_ranking_embeddings(query, gallery, block_elements=block_elements, on_progress=steps.append)
        np.testing.assert_allclose(ours, dense, rtol=0, atol=1e-6)
        assert ours.shape == (30, 180) and ours.dtype == np.float32
        assert sum(steps) == re_ranking_steps(30, 180)
    q_pids, g_pids = np.arange(1, 31), np.repeat(np.arange(1, 31), 6)
    q_cams, g_cams = np.ones(30, int), np.tile(np.arange(2, 8), 30)
    assert (evaluate_market1501(ours, q_pids, g_pids, q_cams, g_cams).to_dict()
            == evaluate_market1501(dense, q_pids, g_pids, q_cams, g_cams).to_dict())


def test_rerank_on_the_real_mini_set_matches_the_dense_reference(osnet_path, mot17_dir):
    """On real embeddings (OSNet on mot17-reid-mini), ``evaluate_market(rerank=True)`` gives the scores of the dense
    reference path (re_ranking of the three cosine matrices, as before), to the last digit."""
    from edge_reid.data.market1501 import load_market1501
    from edge_reid.embedder import Embedder
    from edge_reid.evaluation.market_eval import embed_files, evaluate_market

    dataset = load_market1501(mot17_dir)
    with Embedder(osnet_path) as embedder:
        result = evaluate_market(embedder, dataset, rerank=True)
        query = embed_files(embedder, dataset.query.paths).embeddings
        gallery = embed_files(embedder, dataset.gallery.paths).embeddings
    keep = dataset.gallery.pids != -1
    gallery, g_pids, g_cams = gallery[keep], dataset.gallery.pids[keep], dataset.gallery.camids[keep]
    dense = re_ranking(cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery))
    reference = evaluate_market1501(dense, dataset.query.pids, g_pids, dataset.query.camids, g_cams)
    assert result.scores.to_dict() == reference.to_dict()
    assert result.scores.mAP == pytest.approx(reference.mAP, abs=1e-9)


def test_scoring_sorts_a_block_of_queries_at_a_time(monkeypatch):
    """Defects: the protocol sorted the whole (Q, G) matrix at once into an int64 order twice its size (7.7 GB for
    MSMT17, besides the 3.8 GB distances), and kept each query's whole (G,) float64 CMC alive through a view of its
    first ranks (another 7.7 GB). Now a block of queries at a time, the first ranks copied: same numbers."""
    rng = np.random.default_rng(2)
    num_q, num_g = 120, 4000
    g_pids = rng.integers(0, 300, num_g)
    q_pids = rng.integers(1, 300, num_q)
    q_cams, g_cams = rng.integers(1, 7, num_q), rng.integers(1, 7, num_g)
    g_pids[:50] = -1
    distmat = rng.random((num_q, num_g), dtype=np.float32)
    distmat[:, :10] = 0.5  # ties keep gallery order
    whole = evaluate_market1501(distmat, q_pids, g_pids, q_cams, g_cams)
    monkeypatch.setattr(metrics, "_ORDER_BLOCK_ELEMENTS", num_g * 7, raising=False)
    blocked, peak = _peak_bytes(evaluate_market1501, distmat, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(blocked.cmc, whole.cmc)
    assert blocked.mAP == whole.mAP and blocked.num_valid_queries == whole.num_valid_queries
    assert peak < distmat.nbytes, f"peak {peak} bytes: the (Q, G) int64 order is {2 * distmat.nbytes}"
    steps = []
    evaluate_market1501(distmat, q_pids, g_pids, q_cams, g_cams, on_progress=steps.append)
    assert steps == [7] * (num_q // 7) + [num_q % 7]


def test_cosine_distance_makes_no_temporary_of_its_size():
    """Defect: ``(1 - q @ g.T).astype(float32)`` held two (Q, G) matrices at once (7.7 GB for MSMT17). Same values
    now, computed in place."""
    rng = np.random.default_rng(1)
    query, gallery = _unit(rng.normal(size=(300, 32))), _unit(rng.normal(size=(2000, 32)))
    dist, peak = _peak_bytes(cosine_distance, query, gallery)
    np.testing.assert_array_equal(dist, (1.0 - query @ gallery.T).astype(np.float32))
    assert dist.dtype == np.float32 and dist.shape == (300, 2000)
    assert peak < 1.5 * dist.nbytes


@pytest.mark.parametrize("rerank", [False, True])
def test_each_stage_after_embedding_reports_progress(tmp_path, rerank):
    """Defect: after the embedding bar filled, re-ranking and scoring (minutes at full size) ran with the bar
    stuck at 100 %. Each stage now announces itself with its total and counts up to it."""
    from edge_reid.data.market1501 import load_market1501
    from edge_reid.evaluation.market_eval import evaluate_market
    from edge_reid.evaluation.rerank import re_ranking_steps

    stages = []

    def on_stage(description, total):
        stages.append([description, total, 0])
        return lambda n: stages[-1].__setitem__(2, stages[-1][2] + n)

    result = evaluate_market(_PixelEmbedder(), load_market1501(_market_folder(tmp_path / "m", persons=12, views=5)),
                             rerank=rerank, on_stage=on_stage)
    expected = [["scoring", 12, 12]]
    if rerank:
        expected.insert(0, ["re-ranking", re_ranking_steps(12, 12 * 5 + 40), re_ranking_steps(12, 12 * 5 + 40)])
    assert stages == expected
    assert result.scores.num_queries == 12


def _terminal_console(monkeypatch, module):
    """Give a command's module a console that animates as on a terminal, writing into a buffer it returns."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    monkeypatch.setattr(module, "console", Console(file=buffer, force_terminal=True, force_interactive=True, width=120))
    return buffer


def test_eval_cli_bar_shows_each_stage(osnet_path, mot17_dir, monkeypatch):
    """On a terminal, ``eval --rerank``'s bar names each stage as it runs: embedding, re-ranking, scoring."""
    from edge_reid.cli import eval_command, main

    screen = _terminal_console(monkeypatch, eval_command)
    assert main(["eval", "--model", str(osnet_path), "--data", str(mot17_dir), "--rerank"]) == 0
    for stage in ("embedding", "re-ranking", "scoring"):
        assert stage in screen.getvalue(), stage


def test_eval_mot_bar_names_each_result_file(vtest_gt_dir, tmp_path, capsys, monkeypatch):
    """Defect: ``eval-mot`` on a MOT20-size sequence ran TrackEval for minutes per result file with nothing on the
    screen (TrackEval's own output is captured). A bar over the files now, naming the file being scored."""
    from edge_reid.cli import eval_mot_command, main
    from edge_reid.mot_writer import write_rows
    from edge_reid.motchallenge import read_rows

    rows = read_rows(vtest_gt_dir / "gt" / "gt.txt")
    rows = rows[rows[:, 6] != 0]
    paths = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for path in paths:
        write_rows(path, rows)
    screen = _terminal_console(monkeypatch, eval_mot_command)
    assert main(["eval-mot", "--gt", str(vtest_gt_dir), *map(str, paths)]) == 0
    assert "TrackEval: a.txt (1 of 2)" in screen.getvalue() and "TrackEval: b.txt (2 of 2)" in screen.getvalue()
    assert capsys.readouterr().out.count("HOTA 100.00") == 2
