"""Files an older edge-reid wrote, read by this one: each loads, or is refused saying what to do."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edge_reid.errors import DataError, EdgeReidWarning
from edge_reid.matching.gallery import Gallery
from edge_reid.matching.gallery_file import write_gallery_file

SAVED_AT = 1796215606.671138  # 2026-12-02 12:46:46 UTC


def _old_gallery(path, first_seen: float, last_seen: float, saved_at: float | None = SAVED_AT) -> np.ndarray:
    """A gallery as edge-reid 2026-11-21 (9fa2177) saved it: same header fields, whatever times it was given
    (it took any number: a camera's milliseconds, a negative offset, NaN)."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((3, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    header = {
        "dim": 8, "dtype": "float32", "history_size": 8, "kind": "edge-reid gallery", "model_id": "sha256:abc",
        "model_name": "osnet.onnx", "next_identity_id": 3, "novelty": 0.9, "threshold": 0.6,
        "identities": [
            {"count": 2, "enrolled": 2, "first_seen": 1000.0, "identity_id": 1, "last_seen": 1000.0, "name": "alice",
             "recent": 0},
            {"count": 1, "enrolled": 0, "first_seen": first_seen, "identity_id": 2, "last_seen": last_seen, "name": None,
             "recent": 1},
        ],
    }
    if saved_at is not None:
        header["saved_at"] = saved_at
    write_gallery_file(path, header, rows)
    return rows


@pytest.mark.parametrize("first_seen, last_seen", [
    (1.7e12, 1.7e12 + 40.0),  # milliseconds since 1970 (CAP_PROP_POS_MSEC)
    (-5.0, 3.0),  # a clock with another origin
    (float("nan"), float("inf")),
])
def test_gallery_with_times_older_versions_stored_loads_at_its_save_time(tmp_path, first_seen, last_seen):
    path = tmp_path / "old.edgereid"
    rows = _old_gallery(path, first_seen, last_seen)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gallery = Gallery.load(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, EdgeReidWarning)]
    assert len(messages) == 1, messages  # one warning per file, not one per value
    assert str(path) in messages[0] and "identity 2" in messages[0] and "save time" in messages[0]
    alice, other = gallery.identities
    assert (alice.name, alice.first_seen, alice.last_seen) == ("alice", 1000.0, 1000.0)  # valid times kept
    expected_last = last_seen if 0.0 <= last_seen <= 1e11 else SAVED_AT
    assert (other.first_seen, other.last_seen) == (SAVED_AT, expected_last)
    np.testing.assert_array_equal(gallery.embeddings(1), rows[:2])
    np.testing.assert_array_equal(gallery.embeddings(2), rows[2:])

    gallery.save(path)  # the next save stores valid times: no warning on the next load
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Gallery.load(path)
    assert again.identities[1].first_seen == SAVED_AT


@pytest.mark.parametrize("saved_at", [None, 0.0, float("nan")])  # no save time edge-reid wrote (time.time())
def test_gallery_with_bad_times_and_no_save_time_is_refused_naming_it(tmp_path, saved_at):
    path = tmp_path / "old.edgereid"
    _old_gallery(path, -5.0, 3.0, saved_at=saved_at)
    with pytest.raises(DataError, match=r"old\.edgereid is inconsistent: identity 2's first_seen -5\.0"):
        Gallery.load(path)


def test_engine_of_an_older_edge_reid_is_named_when_no_engine_is_current(tmp_path):
    """Engines built by edge-reid 2026-11-21 (schema 1; a spec fingerprint that also hashed the spec's name) are
    another model's to this version: the error said only "no TensorRT engine ... build" beside the old engine."""
    import hashlib
    import json

    from conftest import MODEL_SHA, ORIN_TRT103, SPEC, make_engine
    from edge_reid.tensorrt.errors import EngineNotFoundError
    from edge_reid.tensorrt.manifest import select_engine

    manifest, path = make_engine(tmp_path)
    data = json.loads(path.read_text())
    data["schema"] = 1  # as 2026-11-21 wrote it: no GPU module, the spec fingerprint with the name
    data["model"]["spec_fingerprint"] = hashlib.sha256(json.dumps(SPEC.to_dict(), sort_keys=True).encode()).hexdigest()
    for key in ("multiprocessors", "memory_gib", "board"):
        del data["gpu"][key]
    path.write_text(json.dumps(data))
    with pytest.raises(EngineNotFoundError) as info:
        select_engine(tmp_path, "models/osnet_x0_25_msmt17.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    message = str(info.value)
    assert f"by an older edge-reid: {manifest.engine_file}" in message
    assert "`edge-reid build --model models/osnet_x0_25_msmt17.onnx --precision fp16" in message
