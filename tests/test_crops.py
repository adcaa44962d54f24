import cv2

from edge_reid.crops import cut_person_crops, save_crops


def test_cut_crops_from_real_video(vtest_path, detector, tmp_path):
    crops = cut_person_crops(vtest_path, detector, max_crops=15, every_n_frames=10, min_box_height=48)
    assert len(crops) == 15
    assert all(c.ndim == 3 and c.shape[2] == 3 and c.shape[0] >= 48 and c.shape[0] > c.shape[1] for c in crops)
    paths = save_crops(crops[:3], tmp_path / "pool")
    assert [p.name for p in paths] == ["crop_00000.jpg", "crop_00001.jpg", "crop_00002.jpg"]
    assert cv2.imread(str(paths[0])).shape == crops[0].shape
