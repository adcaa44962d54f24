
import numpy as np

from edge_reid.preprocess import reference_preprocess
from edge_reid.spec import BUILTIN_SPECS
from edge_reid.data.market1501 import sample_calibration_images
from edge_reid.tensorrt.calibration_data import CalibrationImages


def test_calibration_images_come_from_train_and_are_preprocessed_like_run(mot17_dir, tmp_path):
    paths = list(sample_calibration_images(mot17_dir, 10, 0))
    assert len(paths) == 10 and all(p.parent.name == "bounding_box_train" for p in paths)
    assert list(sample_calibration_images(mot17_dir, 10, 0)) == paths, "seeded: same images each time"
    broken = tmp_path / "0001_c1s1_000001_00.jpg"
    broken.write_bytes(b"not a jpeg")
    spec = BUILTIN_SPECS["osnet"]
    images = CalibrationImages(paths[:5] + [broken] + paths[5:], spec, chunk=4)
    batches = list(images)
    assert [b.shape[0] for b in batches] == [4, 3, 3]  # 11 files in chunks of 4; the unreadable one is skipped, not fatal
    assert images.unreadable == [broken]
    import cv2

    expected = reference_preprocess(cv2.imread(str(paths[0])), spec)
    np.testing.assert_allclose(batches[0][0], expected, rtol=1e-5, atol=1e-4)


def test_the_tensorrt_build_path_does_not_import_onnxruntime_quantization():
    """TensorRT's build (and its implicit-calibration images) must not pull ONNX Runtime's quantization tools in."""
    import subprocess
    import sys

    code = (
        "import sys, edge_reid.tensorrt.builder, edge_reid.tensorrt.calibration_data, edge_reid.cli.build_command; "
        "print(sorted(m for m in sys.modules if m.startswith('onnxruntime')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "onnxruntime.quantization" not in result.stdout
