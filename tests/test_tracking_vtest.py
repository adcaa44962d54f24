"""Tracking on real video: a slice of vtest.avi scored against its ground truth with TrackEval."""

import numpy as np
import pytest

from edge_reid.evaluation.mot import evaluate_mot
from edge_reid.motchallenge import read_rows, read_sequence_info
from edge_reid.pipeline import Pipeline

FRAMES = 50  # 5 s: people walking in a group, crossing each other


def _ground_truth_slice(gt_dir, frames, folder):
    info = read_sequence_info(gt_dir)
    rows = read_rows(info.gt_path)
    rows = rows[rows[:, 0] <= frames]
    (folder / "gt").mkdir(parents=True)
    with open(folder / "gt" / "gt.txt", "w") as handle:
        for row in rows:
            handle.write(f"{int(row[0])},{int(row[1])},{row[2]:.3f},{row[3]:.3f},{row[4]:.3f},{row[5]:.3f},{int(row[6])},-1,-1,-1\n")
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname=vtest-slice\nframeRate=10\nseqLength={frames}\n")
    return folder


@pytest.mark.slow
def test_identities_on_a_slice_of_vtest_beat_a_floor(tmp_path, embedder, detector, vtest_path, vtest_gt_dir):
    pipeline = Pipeline(embedder, detector)
    rows, past_rows = [], []
    for result in pipeline.run(str(vtest_path), max_frames=FRAMES):
        for box, score, identity in zip(result.tracked.boxes, result.tracked.scores, result.identities.identity_ids):
            rows.append([result.frame_index + 1, identity, box[0], box[1], box[2] - box[0], box[3] - box[1], score, -1, -1, -1])
        for past in result.past:  # boxes of earlier frames learned now: under their own frame
            assert past.frame_index < result.frame_index
            if past.identity_id >= 1:
                box = past.bbox
                past_rows.append([past.frame_index + 1, past.identity_id, box[0], box[1], box[2] - box[0], box[3] - box[1], past.score, -1, -1, -1])
    ground_truth = _ground_truth_slice(vtest_gt_dir, FRAMES, tmp_path / "gt")
    metrics = evaluate_mot(np.array(rows), ground_truth)
    with_past = evaluate_mot(np.array(rows + past_rows), ground_truth)
    # The people of the first frames are reported from their third; their first two frames come late.
    assert len(past_rows) >= 2 * metrics.gt_tracks // 2
    assert with_past.deta > metrics.deta and with_past.hota >= metrics.hota
    # Measured: IDF1 76.7, HOTA 57.2, 2 ID switches (docs/tracking.md); the floor leaves room for
    # numerical noise across machines, not for a tracker that swaps people.
    assert metrics.idf1 >= 65.0 and metrics.hota >= 48.0
    assert metrics.id_switches <= 6 and metrics.predicted_tracks <= 2 * metrics.gt_tracks
