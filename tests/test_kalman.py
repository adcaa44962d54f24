import numpy as np
import pytest

from edge_reid.tracking.kalman import GATE_CHI2_95, STD_WEIGHT_POSITION, BoxKalmanFilter

BOX = np.array([[100.0, 200.0, 40.0, 80.0]])  # centre x, centre y, w, h


def test_initiate_zero_velocity_and_published_uncertainty():
    mean, cov = BoxKalmanFilter().initiate(BOX)
    np.testing.assert_allclose(mean, [[100, 200, 40, 80, 0, 0, 0, 0]])
    # position std 2 * w/20 (h/20); velocity std 10 * w/160 per 1/30 s, in pixels per second
    np.testing.assert_allclose(np.sqrt(np.diag(cov[0])), [4, 8, 4, 8, 75, 150, 75, 150])
    assert np.count_nonzero(cov[0] - np.diag(np.diag(cov[0]))) == 0


def test_predict_one_reference_step_by_hand():
    kalman = BoxKalmanFilter()
    mean, cov = kalman.initiate(BOX)
    mean[0, 4] = 30.0  # 30 px/s to the right
    new_mean, new_cov = kalman.predict(mean, cov, 1.0 / 30.0)
    assert new_mean[0, 0] == pytest.approx(101.0)
    assert new_cov[0, 0, 0] == pytest.approx(16 + 5625 / 900 + 4)  # P + dt^2 Pv + (w/20)^2
    assert new_cov[0, 0, 4] == pytest.approx(5625 / 30)
    assert new_cov[0, 4, 4] == pytest.approx(5625 + (40 / 160 * 30) ** 2)


def test_predict_scales_noise_with_the_time_step():
    kalman = BoxKalmanFilter()
    mean, cov = kalman.initiate(BOX)
    mean[0, 4] = 30.0
    new_mean, new_cov = kalman.predict(mean, cov, 0.1)  # three reference steps
    assert new_mean[0, 0] == pytest.approx(103.0)
    assert new_cov[0, 0, 0] == pytest.approx(16 + 0.01 * 5625 + 4 * 3)
    assert new_cov[0, 0, 4] == pytest.approx(562.5)
    assert new_cov[0, 4, 4] == pytest.approx(5625 + 56.25 * 3)
    same_mean, same_cov = kalman.predict(mean, cov, 0.0)
    np.testing.assert_array_equal(same_mean, mean)
    np.testing.assert_array_equal(same_cov, cov)
    with pytest.raises(ValueError, match="dt_s"):
        kalman.predict(mean, cov, -0.1)
    with pytest.raises(ValueError, match="dt_s"):
        kalman.predict(mean, cov, float("nan"))


def test_update_by_hand():
    kalman = BoxKalmanFilter()
    mean, cov = kalman.predict(*kalman.initiate(BOX), 0.1)
    new_mean, new_cov = kalman.update(mean, cov, np.array([[110.0, 200.0, 40.0, 80.0]]))
    gain = 84.25 / (84.25 + 4.0)  # P / (P + (w/20)^2)
    assert new_mean[0, 0] == pytest.approx(100 + gain * 10)
    assert new_mean[0, 4] == pytest.approx(562.5 / 88.25 * 10)
    assert new_mean[0, 1] == pytest.approx(200.0) and new_mean[0, 5] == pytest.approx(0.0)
    assert new_cov[0, 0, 0] == pytest.approx(84.25 * 4 / 88.25)
    np.testing.assert_allclose(new_cov[0], new_cov[0].T, atol=1e-9)


def test_vectorised_over_tracks_and_gate():
    kalman = BoxKalmanFilter()
    boxes = np.array([[100.0, 200.0, 40.0, 80.0], [300.0, 100.0, 20.0, 50.0]])
    mean, cov = kalman.predict(*kalman.initiate(boxes), 0.1)
    one_mean, one_cov = kalman.predict(*kalman.initiate(boxes[1:]), 0.1)
    np.testing.assert_allclose(mean[1:], one_mean)
    np.testing.assert_allclose(cov[1:], one_cov)
    distance = kalman.gating_distance(mean, cov, np.array([[101.0, 201.0, 40.0, 80.0], [600.0, 500.0, 40.0, 80.0]]))
    assert distance.shape == (2, 2)
    assert distance[0, 0] < GATE_CHI2_95 < distance[0, 1]
    assert distance[1, 1] > GATE_CHI2_95



def _naive_gating_distance(mean, cov, boxes):
    """Pair by pair: d^T S^-1 d, with S the track's projected covariance plus the measurement noise."""
    out = np.zeros((len(mean), len(boxes)))
    for n in range(len(mean)):
        std = STD_WEIGHT_POSITION * mean[n, [2, 3, 2, 3]]
        projected = cov[n, :4, :4] + np.diag(std**2)
        for m, box in enumerate(boxes):
            d = box - mean[n, :4]
            out[n, m] = d @ np.linalg.inv(projected) @ d
    return out


def test_gating_distance_solves_one_system_per_track_with_the_same_numbers(monkeypatch):
    """Defect: gating_distance broadcast each track's 4x4 system to every detection, (N, M, 4, 4), and solved
    one per pair; one solve per track with M right-hand sides gives the same."""
    rng = np.random.default_rng(0)
    kalman = BoxKalmanFilter()
    tracks = np.column_stack([rng.uniform(0, 1900, 12), rng.uniform(0, 1000, 12), rng.uniform(20, 60, 12), rng.uniform(50, 150, 12)])
    mean, cov = kalman.predict(*kalman.initiate(tracks), 0.3)
    boxes = np.concatenate((tracks + rng.normal(0, 5, tracks.shape), tracks[::-1] + 100.0))  # near and far, M = 24
    shapes = []
    solve = np.linalg.solve
    monkeypatch.setattr(np.linalg, "solve", lambda a, b: shapes.append(np.shape(a)) or solve(a, b))
    distance = kalman.gating_distance(mean, cov, boxes)
    assert shapes == [(12, 4, 4)]  # one 4x4 system per track
    np.testing.assert_allclose(distance, _naive_gating_distance(mean, cov, boxes), rtol=1e-9)
