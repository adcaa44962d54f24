"""The implicit-calibration batch feeding over a host buffer (the part of the TensorRT 8.x calibrator that is ours)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_reid.errors import DataError
from edge_reid.tensorrt.calibrator import CalibrationBatchFeeder, CalibrationCache


def numbered_batches(sizes, chw=(3, 4, 2)):
    """Batches whose rows are filled with their global image index, so order and identity can be checked."""
    start = 0
    for size in sizes:
        batch = np.empty((size, *chw), np.float32)
        for i in range(size):
            batch[i] = start + i
        start += size
        yield batch


def drain(feeder):
    seen = []
    while feeder.next_batch():
        seen.append(feeder.host[:, 0, 0, 0].astype(int).tolist())
    return seen


def test_rechunks_uneven_batches_into_full_host_batches():
    host = np.zeros((4, 3, 4, 2), np.float32)
    feeder = CalibrationBatchFeeder(numbered_batches([3, 5, 0, 2, 1]), host)
    assert feeder.batch_size == 4
    assert drain(feeder) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # 11 images: two full batches, the final 3 dropped (TensorRT needs full batches)
    assert feeder.fed_batches == 2 and feeder.fed_images == 8 and feeder.dropped_images == 3


def test_whole_rows_are_copied_in_order():
    host = np.zeros((2, 3, 4, 2), np.float32)
    feeder = CalibrationBatchFeeder(numbered_batches([5]), host)
    assert feeder.next_batch()
    assert np.all(host[0] == 0) and np.all(host[1] == 1)
    assert feeder.next_batch()
    assert np.all(host[0] == 2) and np.all(host[1] == 3)
    assert not feeder.next_batch()  # one image left over: dropped
    assert feeder.dropped_images == 1


def test_exact_multiple_drops_nothing_and_end_is_sticky():
    host = np.zeros((3, 3, 4, 2), np.float32)
    feeder = CalibrationBatchFeeder(numbered_batches([3, 3]), host)
    assert drain(feeder) == [[0, 1, 2], [3, 4, 5]]
    assert feeder.dropped_images == 0
    assert not feeder.next_batch() and not feeder.next_batch()


def test_fewer_images_than_one_batch_feeds_nothing():
    host = np.zeros((8, 3, 4, 2), np.float32)
    feeder = CalibrationBatchFeeder(numbered_batches([5]), host)
    assert not feeder.next_batch()
    assert feeder.fed_batches == 0 and feeder.dropped_images == 5


def test_writes_into_the_given_buffer_not_a_copy():
    backing = np.zeros((2 * 3 * 4 * 2,), np.float32)
    host = backing.reshape(2, 3, 4, 2)  # like a numpy view over mapped CUDA memory
    feeder = CalibrationBatchFeeder(numbered_batches([2], (3, 4, 2)), host)
    assert feeder.next_batch()
    assert backing[-1] == 1.0 and backing[0] == 0.0


def test_wrong_shape_is_a_data_error():
    host = np.zeros((2, 3, 4, 2), np.float32)
    feeder = CalibrationBatchFeeder([np.zeros((2, 3, 8, 2), np.float32)], host)
    with pytest.raises(DataError, match=r"\(N, 3, 4, 2\)"):
        feeder.next_batch()


def test_host_buffer_must_be_float32_nchw():
    with pytest.raises(ValueError):
        CalibrationBatchFeeder([], np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError):
        CalibrationBatchFeeder([], np.zeros((2, 3, 4, 2), np.float64))


def test_calibration_cache_round_trip(tmp_path):
    cache = CalibrationCache(tmp_path / "calibration" / "m.cache")
    assert cache.read() is None
    cache.write(memoryview(b"TRT-8602-EntropyCalibration2\nimages: 3c010a14\n"))
    assert cache.read().startswith(b"TRT-8602")
    assert not list((tmp_path / "calibration").glob("*.part"))
    (tmp_path / "calibration" / "m.cache").write_bytes(b"")
    assert cache.read() is None  # an empty cache means: calibrate again
