"""Damaged or crafted input files (a gallery copied from a USB stick, a downloaded "model pack"): each is
refused with an error naming the file, without exhausting memory or time."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_reid.data.images import MAX_IMAGE_PIXELS_ENV, UnreadableImageError, image_file_size, read_image
from edge_reid.errors import DataError, ModelError
from edge_reid.matching.gallery_file import _PREFIX, MAGIC, read_gallery
from edge_reid.motchallenge import read_sequence_info
from edge_reid.spec import load_spec
from edge_reid.tensorrt.errors import EngineManifestError
from edge_reid.tensorrt.manifest import EngineStatus, read_manifest, scan_engines

#: Address-space cap of the subprocess that reads a bomb: decoding 30000x30000 BGR takes 2.7 GB.
_CAP = 2 << 30


def _run_capped(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh Python with its address space capped at 2 GB; its stdout."""
    prelude = f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({_CAP}, {_CAP}))\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _real_crop(mot17_dir: Path) -> np.ndarray:
    path = sorted((mot17_dir / "bounding_box_test").glob("*.jpg"))[0]
    return cv2.imread(str(path))


def _jpeg_bomb(crop: np.ndarray, width: int, height: int) -> bytes:
    """A real crop's JPEG with its frame header claiming ``width`` x ``height``: a few KB that libjpeg
    decodes into width*height*3 bytes (the missing rows grey, with only a warning)."""
    data = bytearray(cv2.imencode(".jpg", crop)[1].tobytes())
    index = 2
    while not (0xC0 <= data[index + 1] <= 0xCF and data[index + 1] not in (0xC4, 0xC8, 0xCC)):
        index += 2 + struct.unpack_from(">H", data, index + 2)[0]
    struct.pack_into(">HH", data, index + 5, height, width)
    return bytes(data)


def _png_bomb(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` with a few rows of data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = zlib.compress(b"\0" * (1 + width * 3) * 4, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding(tmp_path, mot17_dir):
    crop = _real_crop(mot17_dir)
    (tmp_path / "bomb.jpg").write_bytes(_jpeg_bomb(crop, 30000, 30000))
    (tmp_path / "bomb.png").write_bytes(_png_bomb(30000, 30000))
    cv2.imwrite(str(tmp_path / "real.jpg"), crop)
    out = _run_capped(f"""
        from edge_reid.data.images import UnreadableImageError, read_image, read_images
        for name in ("bomb.jpg", "bomb.png"):
            try:
                read_image({str(tmp_path)!r} + "/" + name)
                print("decoded", name)
            except UnreadableImageError as exc:
                print("refused", exc)
        images, used, skipped = read_images([{str(tmp_path)!r} + "/" + n for n in ("bomb.jpg", "real.jpg")])
        print("kept", [p.name for p in used], images[0].shape)
    """)
    refused = [line for line in out.splitlines() if line.startswith("refused")]
    assert len(refused) == 2, out
    for line, name in zip(refused, ("bomb.jpg", "bomb.png")):
        assert name in line and "30000x30000" in line and MAX_IMAGE_PIXELS_ENV in line
    assert f"kept ['real.jpg'] {crop.shape}" in out


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tif"])
def test_header_size_of_every_format_matches_the_decoded_image(mot17_dir, ext):
    crop = _real_crop(mot17_dir)
    data = cv2.imencode(ext, crop)[1].tobytes()
    assert image_file_size(data) == (crop.shape[1], crop.shape[0])
    assert image_file_size(data[:20]) in (None, (crop.shape[1], crop.shape[0]))  # a cut header: no exception


def test_pixel_limit_is_set_by_the_environment(tmp_path, mot17_dir, monkeypatch):
    crop = _real_crop(mot17_dir)
    path = tmp_path / "crop.png"
    cv2.imwrite(str(path), crop)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, str(crop.shape[0] * crop.shape[1] - 1))
    with pytest.raises(UnreadableImageError, match=f"crop.png: {crop.shape[1]}x{crop.shape[0]} pixels.*{MAX_IMAGE_PIXELS_ENV}"):
        read_image(path)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, str(crop.shape[0] * crop.shape[1]))
    assert read_image(path).shape == crop.shape
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match=f"{MAX_IMAGE_PIXELS_ENV}='lots'"):
        read_image(path)


def test_image_pipe_and_device_are_skipped_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    out = _run_capped(f"""
        from edge_reid.data.images import read_images
        images, used, skipped = read_images([{str(tmp_path)!r} + "/pipe.jpg", {str(tmp_path)!r} + "/zero.jpg"])
        print([(s.path.name, s.reason) for s in skipped])
    """, timeout=30)
    assert "('pipe.jpg', 'not a regular file" in out and "('zero.jpg', 'not a regular file" in out


def _crafted_gallery(path: Path, header: dict | bytes, payload: bytes) -> Path:
    """A gallery file with a valid checksum around whatever ``header`` says."""
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    digest = hashlib.sha256(body + payload).digest()
    path.write_bytes(_PREFIX.pack(MAGIC, 1, 0, len(body), len(payload), digest) + body + payload)
    return path


_GALLERY = dict(kind="edge-reid gallery", dim=4, threshold=0.5, novelty=0.9, history_size=4, next_identity_id=2,
                payload_dtype="float32", payload_shape=[1, 4],
                identities=[dict(identity_id=1, name=None, first_seen=0, last_seen=0, count=1, enrolled=1, recent=0)])
_ROW = np.array([[1, 0, 0, 0]], np.float32).tobytes()


@pytest.mark.parametrize("header, match", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (dict(_GALLERY, model_id=7), "model_id 7 is not text"),
    (dict(_GALLERY, payload_shape="14"), "payload_shape '14'"),
    (dict(_GALLERY, payload_shape=[-1, -4]), r"payload_shape \[-1, -4\]"),
    (dict(_GALLERY, threshold="0.5"), "threshold '0.5' is not a number"),
    (dict(_GALLERY, identities=[dict(_GALLERY["identities"][0], enrolled=1.5)]), "enrolled 1.5 is not a whole number"),
    (dict(_GALLERY, identities=[dict(_GALLERY["identities"][0], identity_id=True)]), "identity_id True"),
    (dict(_GALLERY, payload_shape=[2, 4], identities=_GALLERY["identities"] * 2), "identity id 1 appears twice"),
])
def test_crafted_gallery_with_a_valid_checksum_is_refused(tmp_path, header, match):
    rows = header["payload_shape"][0] if isinstance(header, dict) and isinstance(header["payload_shape"], list) else 1
    path = _crafted_gallery(tmp_path / "g.edgereid", header, _ROW * max(rows, 1))
    before = path.read_bytes()
    with pytest.raises(DataError, match=match) as caught:
        read_gallery(path, model_id="abc")
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert read_gallery(_crafted_gallery(tmp_path / "ok.edgereid", _GALLERY, _ROW)).identities[0].identity_id == 1


@pytest.mark.parametrize("side, match", [
    ({"height": 10**9}, "height=1000000000 is not valid; expected a positive integer up to 4096"),
    ({"embedding_dim": 10**12}, "embedding_dim=1000000000000 is not valid; expected a positive integer up to 65536"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_absurd_sidecar_is_refused(tmp_path, osnet_path, side, match):
    model = tmp_path / "mymodel.onnx"
    shutil.copyfile(osnet_path, model)
    (tmp_path / "mymodel.json").write_text(side if isinstance(side, str) else json.dumps(side))
    with pytest.raises(ModelError, match=match) as caught:
        load_spec(model)
    assert "mymodel.json" in str(caught.value)


def test_manifest_pipe_huge_or_nested_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "huge.json").write_bytes(b" " * (2 << 20))
    out = _run_capped(f"""
        from edge_reid.tensorrt.manifest import scan_engines
        for check in scan_engines({str(tmp_path)!r}, None):
            print(check.manifest_path.name, check.status.name, check.reasons)
    """, timeout=30)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["pipe.json"].startswith("BROKEN") and "not a regular file" in lines["pipe.json"]
    assert "nested too deeply" in lines["deep.json"]
    assert "over 1048576 bytes" in lines["huge.json"]
    for name in ("deep.json", "huge.json"):
        with pytest.raises(EngineManifestError, match=name):
            read_manifest(tmp_path / name)


def test_manifest_engine_file_must_be_beside_it(tmp_path):
    from edge_reid.tensorrt.manifest import READABLE_SCHEMAS
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema": max(READABLE_SCHEMAS), "engine_file": "../../etc/passwd"}))
    with pytest.raises(EngineManifestError, match=r"m.json: engine_file '../../etc/passwd' is not a file name beside"):
        read_manifest(path)
    assert scan_engines(tmp_path, None)[0].status is EngineStatus.BROKEN


@pytest.mark.parametrize("key, value, match", [
    ("seqLength", "1000000000000", "seqLength must be 1..1000000"),
    ("imHeight", "-5", "imHeight=-5 must be >= 0"),
])
def test_absurd_seqinfo_is_refused(tmp_path, vtest_gt_dir, key, value, match):
    text = (vtest_gt_dir / "seqinfo.ini").read_text()
    lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines()]
    (tmp_path / "seqinfo.ini").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match) as caught:
        read_sequence_info(tmp_path)
    assert "seqinfo.ini" in str(caught.value)
    assert read_sequence_info(vtest_gt_dir).length == 795


@pytest.mark.parametrize("dims", [[None, 3, 2**62, 128], [None, 3, 256, 100000]])
def test_absurd_model_input_sizes_are_refused_before_buffers_are_made(tmp_path, dims):
    """A graph claiming a 2**62-pixel-high crop was accepted by load_spec, and making its Embedder failed with
    numpy's "array is too big" (a traceback); a smaller absurd size would have allocated gigabytes."""
    from onnx import TensorProto, helper

    from edge_reid.errors import ModelError
    from edge_reid.spec import load_spec
    from onnx_builders import save_model

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N" if d is None else d for d in dims])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    model = save_model(tmp_path / "huge.onnx", [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
                                                helper.make_node("Flatten", ["pooled"], ["output"])], [x], [y])
    with pytest.raises(ModelError, match=r"huge\.onnx: the model's (height|width) is \d+, above 4096"):
        load_spec(model, {"name": "huge"})



def test_a_folder_named_like_an_image_or_manifest_is_refused_without_leaking_a_descriptor(tmp_path):
    """os.open opens a folder on Linux and open(descriptor) then raised IsADirectoryError: the
    descriptor stayed open, one per call (scan_engines reads every *.json of an engines folder)."""
    (tmp_path / "photo.jpg").mkdir()
    (tmp_path / "engine.json").mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(UnreadableImageError, match="Is a directory"):
            read_image(tmp_path / "photo.jpg")
        with pytest.raises(EngineManifestError, match="Is a directory"):
            read_manifest(tmp_path / "engine.json")
    assert len(os.listdir("/proc/self/fd")) - before < 5
