"""The .edgereid container: round trip, corruption and truncation detection, atomic replace."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_reid.errors import DataError, OutputPathError
from edge_reid.matching.gallery_file import read_gallery_file, write_gallery_file

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_round_trip(tmp_path, dtype):
    payload = np.random.default_rng(0).standard_normal((7, 5)).astype(dtype)
    write_gallery_file(tmp_path / "g.edgereid", {"model_id": "abc", "names": ["Ä"]}, payload)
    header, loaded = read_gallery_file(tmp_path / "g.edgereid")
    assert header["model_id"] == "abc" and header["names"] == ["Ä"]
    assert loaded.dtype == dtype
    np.testing.assert_array_equal(loaded, payload)
    assert [p.name for p in tmp_path.iterdir()] == ["g.edgereid"]  # no temporary left behind


def test_empty_payload_round_trip(tmp_path):
    write_gallery_file(tmp_path / "g", {}, np.zeros((0, 4), np.float32))
    assert read_gallery_file(tmp_path / "g")[1].shape == (0, 4)


def saved(tmp_path) -> tuple[Path, bytes]:
    path = tmp_path / "g.edgereid"
    write_gallery_file(path, {"model_id": "m"}, np.arange(40, dtype=np.float32).reshape(8, 5))
    return path, path.read_bytes()


def test_every_truncation_is_detected(tmp_path):
    path, blob = saved(tmp_path)
    for length in range(len(blob)):
        path.write_bytes(blob[:length])
        with pytest.raises(DataError, match="truncated|not an edge-reid gallery"):
            read_gallery_file(path)
        assert path.read_bytes() == blob[:length]  # never replaced or deleted


def test_every_flipped_byte_after_the_magic_is_detected(tmp_path):
    path, blob = saved(tmp_path)
    for offset in range(8, len(blob)):
        damaged = bytearray(blob)
        damaged[offset] ^= 0x40
        path.write_bytes(bytes(damaged))
        with pytest.raises(DataError):
            read_gallery_file(path)


def test_other_files_and_newer_versions_refused(tmp_path):
    other = tmp_path / "photo.jpg"
    other.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    with pytest.raises(DataError, match="not an edge-reid gallery file"):
        read_gallery_file(other)
    path, blob = saved(tmp_path)
    path.write_bytes(blob[:8] + (99).to_bytes(4, "little") + blob[12:])
    with pytest.raises(DataError, match="format version 99.*upgrade"):
        read_gallery_file(path)
    with pytest.raises(DataError, match="does not exist"):
        read_gallery_file(tmp_path / "missing.edgereid")


def test_a_fifo_device_or_folder_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "g.edgereid"
    os.mkfifo(fifo)
    outcome = {}

    def read() -> None:
        try:
            read_gallery_file(fifo)
        except DataError as exc:
            outcome["error"] = str(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked opening the FIFO: release it (a writer that closes at once), then fail
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        reader.join(10)
        pytest.fail(f"read_gallery_file tried to read the FIFO {fifo}")
    assert outcome["error"] == (f"gallery file {fifo} is not a regular file (a device, pipe or socket); "
                                "give the path of an .edgereid gallery file")
    if Path(os.devnull).exists():
        with pytest.raises(DataError, match=f"gallery file {os.devnull} is not a regular file"):
            read_gallery_file(os.devnull)
    folder = tmp_path / "folder.edgereid"
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        read_gallery_file(folder)
    assert str(caught.value).startswith(f"gallery file {folder} is a folder")


def test_extra_bytes_detected(tmp_path):
    path, blob = saved(tmp_path)
    path.write_bytes(blob + b"\0")
    with pytest.raises(DataError, match="longer than its header says"):
        read_gallery_file(path)


def test_missing_directory_is_an_output_path_error(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        write_gallery_file(tmp_path / "nope" / "g.edgereid", {}, np.zeros((1, 2), np.float32))


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from edge_reid.matching import Gallery
    path = sys.argv[1]
    gallery = Gallery(256, model_id="m")
    rng = np.random.default_rng(0)
    gallery.enroll("big", rng.standard_normal((120_000, 256)).astype(np.float32))  # ~123 MB: saves take a while
    while True:
        gallery.add(rng.standard_normal(256).astype(np.float32))  # one more identity per save
        gallery.save(path)
    """
)


@pytest.mark.slow
def test_process_killed_mid_save_leaves_previous_gallery_intact(tmp_path):
    from edge_reid.matching import Gallery

    path = tmp_path / "g.edgereid"
    previous = Gallery(256, model_id="m")
    previous.add(np.ones(256, np.float32))
    previous.save(path)
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):  # a save is under way
            assert time.monotonic() < deadline, "writer never started a save"
            assert child.poll() is None, "writer died"
            time.sleep(0.002)
        time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    loaded = Gallery.load(path, model_id="m")  # the previous gallery or a complete new one, never a mix
    if len(loaded) == 1:
        assert loaded.identities[0].identity_id == 1 and len(loaded.store) == 1  # the one saved before
    else:
        big = loaded.find("big")
        assert big is not None and loaded.embedding_counts(big.identity_id) == (120_000, 0)
        assert len(loaded.store) == 120_000 + len(loaded) - 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda h: h["identities"][0].update(name=7), "name is a int, not text"),
        (lambda h: h.update(threshold=float("nan")), "threshold nan is not a cosine similarity"),
        (lambda h: h["identities"][0].update(first_seen=1e30), "first_seen 1e+30 is not a time in seconds since 1970"),
        (lambda h: h.update(next_identity_id=1e30), "next_identity_id 1e+30 outside 1.."),
        (lambda h: h["identities"][0].update(count=-3), "count -3 is negative"),
    ],
)
def test_a_header_with_a_valid_checksum_but_impossible_values_is_inconsistent(tmp_path, change, message):
    """A hand-edited (re-checksummed) header reached users as internal errors (exit 1) where its values were read."""
    from edge_reid.matching.gallery import Gallery
    from edge_reid.matching.gallery_file import read_gallery

    gallery = Gallery(4)
    gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:1])
    header = dict(gallery.metadata(), saved_at=0.0)
    change(header)
    path = tmp_path / "edited.edgereid"
    write_gallery_file(path, header, np.eye(4, dtype=np.float32)[:1])
    with pytest.raises(DataError, match=f"gallery file .*edited.edgereid is inconsistent: .*{re.escape(message)}"):
        read_gallery(path)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("row, length", [(np.full(4, 25.0), "50"), (np.full(4, np.nan), "nan"), (np.zeros(4), "0")])
def test_stored_embeddings_not_of_unit_length_are_inconsistent(tmp_path, dtype, row, length):
    """A checksum-valid file whose rows are not unit vectors loaded silently: a stranger then matched with
    'similarity' 4.06 (rows of length 50), or a NaN row gave an internal error (exit 1) on the first match."""
    from edge_reid.matching.gallery import Gallery
    from edge_reid.matching.gallery_file import read_gallery

    gallery = Gallery(4, dtype=dtype)
    gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:2])
    header = dict(gallery.metadata(), saved_at=0.0)
    path = tmp_path / "written-elsewhere.edgereid"
    write_gallery_file(path, header, np.stack([np.eye(4)[0], row]).astype(dtype))
    with pytest.raises(DataError, match=rf"written-elsewhere.edgereid is inconsistent: stored embedding 1 has length {length}\b"):
        read_gallery(path)
    write_gallery_file(path, header, np.eye(4, dtype=dtype)[:2])  # the same file with unit rows loads
    assert read_gallery(path).identities[0].enrolled.shape == (2, 4)


def test_a_bad_row_deep_in_a_large_gallery_is_named_by_its_own_index(tmp_path):
    """Rows are checked a block at a time (a float64 copy of a large gallery at once doubled its memory): a bad
    row in a later block is still found, and named by its index in the file, not in its block."""
    from edge_reid.unit_vectors import _ROWS_AT_A_TIME, first_non_unit_row

    rows = np.tile(np.eye(4, dtype=np.float32)[:1], (2 * _ROWS_AT_A_TIME + 10, 1))
    assert first_non_unit_row(rows) is None
    rows[2 * _ROWS_AT_A_TIME + 3] *= 3.0
    assert first_non_unit_row(rows) == (2 * _ROWS_AT_A_TIME + 3, 3.0)
    assert first_non_unit_row(rows[:0]) is None


def test_a_save_writes_the_payload_without_a_copy_of_it(tmp_path):
    """``write_gallery_file`` hashes and writes the array's own memory: a copy of the payload (``tobytes``) made a
    save hold the gallery twice. Measured by tracemalloc, which numpy's allocations report to."""
    import tracemalloc

    payload = np.random.default_rng(0).normal(size=(4096, 256)).astype(np.float32)  # 4 MiB
    size = payload.nbytes
    tracemalloc.start()
    try:
        write_gallery_file(tmp_path / "people.edgereid", {"kind": "edge-reid gallery"}, payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * size
    assert np.array_equal(read_gallery_file(tmp_path / "people.edgereid")[1], payload)


def test_a_loaded_gallery_holds_its_embeddings_once(tmp_path):
    """Loading reads the file into one buffer and the payload is a view of it (not a second copy), and the
    gallery's store is allocated once at the size it needs (not by doublings): equal results either way."""
    from edge_reid.matching.gallery import Gallery

    rng = np.random.default_rng(0)
    gallery = Gallery(16)
    for _ in range(300):
        views = rng.normal(size=(3, 16)).astype(np.float32)
        gallery.add(views / np.linalg.norm(views, axis=1, keepdims=True), timestamp=0.0)
    path = tmp_path / "people.edgereid"
    gallery.save(path)
    header, payload = read_gallery_file(path)
    assert payload.flags.writeable and payload.base is not None and not payload.flags.owndata
    loaded = Gallery.load(path)
    rows = len(gallery._store)
    assert len(loaded._store) == rows and loaded._store.capacity == rows
    query = payload[:5]
    assert np.array_equal(loaded.search(query, 3)[1], gallery.search(query, 3)[1])
