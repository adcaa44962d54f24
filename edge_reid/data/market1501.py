"""Market-1501 layout: file names, splits, and the calibration image sampler.

A Market-1501 folder (L. Zheng et al., "Scalable Person Re-identification: A
Benchmark", ICCV 2015) holds three splits of person crops::

    MARKET_DIR/bounding_box_train/   training identities (calibration images come only from here)
    MARKET_DIR/query/                one or more images per test identity
    MARKET_DIR/bounding_box_test/    the gallery, with junk and distractor crops

DukeMTMC-reID (Z. Zheng et al., ICCV 2017) uses the same folders. Two name forms are read:

- Market-1501: ``PPPP_cCsS_FFFFFF_BB.jpg``: person id ``PPPP`` (``-1`` junk,
  ``0000`` distractor), camera ``C``, sequence ``S``, frame ``FFFFFF``;
- DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg``: person id, camera ``C``, frame ``FFFFFFF``
  (no sequence: read as 0).

Anything after the third ``_`` (Market-1501's box index ``BB``) is ignored.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_reid.data.images import SkippedFile, describe_skipped, is_image_file
from edge_reid.errors import DataError
from edge_reid.folders import folder_entries, require_folder

#: person id of junk crops (ignored in evaluation) and of distractors (gallery negatives).
JUNK_PID = -1
DISTRACTOR_PID = 0

TRAIN_DIR = "bounding_box_train"
QUERY_DIR = "query"
GALLERY_DIR = "bounding_box_test"

_PID = re.compile(r"^(?:-1|\d+)$")
_CAMERA = re.compile(r"^c(\d+)(?:s(\d+))?$")  # Market-1501 cCsS, DukeMTMC-reID cC
_FRAME = re.compile(r"^f?(\d+)$")  # Market-1501 FFFFFF, DukeMTMC-reID fFFFFFFF
_LARGEST_NUMBER = np.iinfo(np.int64).max  # ids and cameras are kept as int64
#: What a usable name looks like, for messages.
NAME_FORMS = "PPPP_cCsS_FFFFFF_BB.jpg (Market-1501) or PPPP_cC_fFFFFFFF.jpg (DukeMTMC-reID)"


@dataclass(frozen=True)
class MarketName:
    """What a Market-1501 file name says.

    Attributes:
        pid: person id; -1 junk, 0 distractor.
        camid: camera number (1-based, as written).
        sequence: sequence number within the camera (Market-1501); 0 when the name has none (DukeMTMC-reID).
        frame: frame number.
    """

    pid: int
    camid: int
    sequence: int
    frame: int


def parse_market_name(name: str) -> MarketName | None:
    """Parse ``PPPP_cCsS_FFFFFF[_anything].ext`` (Market-1501) or ``PPPP_cC_fFFFFFFF[_anything].ext``
    (DukeMTMC-reID); None for a malformed name (a number larger than an int64 holds is one).

    >>> parse_market_name("0001_c1s1_001051_00.jpg")
    MarketName(pid=1, camid=1, sequence=1, frame=1051)
    >>> parse_market_name("0005_c2_f0046985.jpg")
    MarketName(pid=5, camid=2, sequence=0, frame=46985)
    >>> parse_market_name("-1_c3s2_000100_01.jpg").pid
    -1
    >>> parse_market_name("Thumbs.db") is None
    True
    """
    stem = Path(name).stem
    parts = stem.split("_", 3)
    if len(parts) < 3:
        return None
    pid_text, camera_text, frame_text = parts[0], parts[1], parts[2]
    camera, frame = _CAMERA.match(camera_text), _FRAME.match(frame_text)
    if not _PID.match(pid_text) or camera is None or frame is None:
        return None
    parsed = MarketName(
        pid=int(pid_text), camid=int(camera.group(1)), sequence=int(camera.group(2) or 0), frame=int(frame.group(1))
    )
    if max(parsed.pid, parsed.camid, parsed.sequence, parsed.frame) > _LARGEST_NUMBER:  # no int64 holds it: not a name
        return None
    return parsed


@dataclass
class MarketSplit:
    """The labelled images of one split folder, in sorted file-name order.

    Attributes:
        folder: the split folder.
        paths: image files with well-formed names.
        pids: (N,) int64 person ids (-1 junk, 0 distractor).
        camids: (N,) int64 camera numbers.
        skipped: files left out (malformed names, non-images, unreadable images).
    """

    folder: Path
    paths: list[Path]
    pids: np.ndarray
    camids: np.ndarray
    skipped: list[SkippedFile] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: np.ndarray) -> "MarketSplit":
        """The split restricted to rows where ``keep`` (an (N,) bool mask) is True; skipped files kept."""
        keep = np.asarray(keep, bool)
        return MarketSplit(
            folder=self.folder,
            paths=[p for p, k in zip(self.paths, keep) if k],
            pids=self.pids[keep],
            camids=self.camids[keep],
            skipped=list(self.skipped),
        )


def _image_files(folder: Path) -> tuple[list[Path], list[SkippedFile]]:
    images, skipped = [], []
    for path in folder_entries(folder, "folder", "expected a Market-1501 split folder of person crops"):
        if path.is_dir():  # not searched: a split's crops lie directly in it, as in every Market-1501 style data set
            skipped.append(SkippedFile(path, "a folder (not searched: crops must lie directly in the split folder)"))
            continue
        if not (path.is_file() or path.is_symlink()):  # a broken link is listed: reading it fails and names it
            continue
        if is_image_file(path):
            images.append(path)
        else:
            skipped.append(SkippedFile(path, "not an image file"))
    return images, skipped


def load_split(folder: str | Path) -> MarketSplit:
    """List one split folder, parsing each file name (images are not read here).

    Malformed names, non-image files and subfolders (not searched) are skipped and listed in ``skipped``.

    Raises:
        DataError: the folder is missing or has no image with a well-formed name.
    """
    folder = Path(folder)
    images, skipped = _image_files(folder)
    paths, pids, camids = [], [], []
    for path in images:
        parsed = parse_market_name(path.name)
        if parsed is None:
            skipped.append(SkippedFile(path, f"malformed name (expected {NAME_FORMS})"))
            continue
        paths.append(path)
        pids.append(parsed.pid)
        camids.append(parsed.camid)
    if not paths:
        found = f"skipped {describe_skipped(skipped, 3)}" if skipped else "it is empty"
        raise DataError(
            f"{folder}: no usable image ({found}); expected person crops directly in it, in Market-1501 layout, "
            "named like 0001_c1s1_001051_00.jpg (Market-1501) or 0001_c2_f0046985.jpg (DukeMTMC-reID)"
        )
    return MarketSplit(folder, paths, np.asarray(pids, np.int64), np.asarray(camids, np.int64), skipped)


@dataclass
class MarketDataset:
    """The evaluation splits of a Market-1501 folder (query and gallery)."""

    root: Path
    query: MarketSplit
    gallery: MarketSplit


def load_market1501(root: str | Path) -> MarketDataset:
    """Read the query and gallery splits of a Market-1501 folder.

    Raises:
        DataError: ``root`` or one of ``query/``, ``bounding_box_test/`` is missing or has no usable image.
    """
    root = require_folder(root, "dataset folder", "give the folder holding query/ and bounding_box_test/ (--data DIR)")
    for name in (QUERY_DIR, GALLERY_DIR):
        if not (root / name).is_dir():
            raise DataError(f"{root}: no {name}/ folder; a Market-1501 folder holds {TRAIN_DIR}/, {QUERY_DIR}/ and {GALLERY_DIR}/")
    return MarketDataset(root, load_split(root / QUERY_DIR), load_split(root / GALLERY_DIR))


def calibration_source(root: str | Path) -> Path:
    """The folder calibration images come from: ``root/bounding_box_train`` when present, else ``root`` itself.

    Never the query or gallery folder: calibrating on the test set inflates results.

    Raises:
        DataError: ``root`` is missing, or is itself a ``query``/``bounding_box_test`` folder.
    """
    root = require_folder(root, "calibration data folder", "give a Market-1501 folder or a folder of person crops")
    if (root / TRAIN_DIR).is_dir():
        return root / TRAIN_DIR
    name = root.resolve().name  # "." or a link names the folder only once resolved
    if name in (QUERY_DIR, GALLERY_DIR):
        raise DataError(f"{root}: calibration images must not come from the test split ({name}/); use {TRAIN_DIR}/")
    return root


def calibration_skipped(root: str | Path) -> list[SkippedFile]:
    """The files of the calibration folder (:func:`calibration_source`) that are not images, and its
    subfolders (not searched), each with why: what :func:`calibration_order` passes over.

    Raises:
        DataError: the folder is missing.
    """
    return _image_files(calibration_source(root))[1]


def calibration_order(root: str | Path, seed: int = 0) -> list[Path]:
    """Every usable calibration image in a seeded order spread over identities and cameras.

    Images are grouped by person id and, within a person, by camera. Persons are
    visited in a seeded random order, round after round; each visit takes the next
    image of that person's next camera. So the first ``k`` images cover as many
    persons as possible, and each person's cameras in turn. Files whose names are
    not Market-1501 names (a plain folder of crops) each count as their own person.
    Junk crops (id -1) are left out.

    Args:
        root: a Market-1501 folder (``bounding_box_train/`` is used) or a folder of person crops.
        seed: the order's seed; the same seed and files give the same order.

    Returns:
        Paths, the whole usable set, best-spread first.

    Raises:
        DataError: no usable image file in the folder.
    """
    folder = calibration_source(root)
    images, _ = _image_files(folder)
    persons: dict[object, dict[int, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for path in images:
        parsed = parse_market_name(path.name)
        if parsed is None:
            persons[("file", path.name)][0].append(path)
        elif parsed.pid != JUNK_PID:
            persons[("pid", parsed.pid)][parsed.camid].append(path)
    if not persons:
        raise DataError(f"{folder}: no usable person crop for calibration ({len(images)} image files, all junk or none)")
    rng = np.random.default_rng(seed)
    queues: list[list[list[Path]]] = []
    for key in sorted(persons, key=str):
        cameras = [sorted(paths) for _, paths in sorted(persons[key].items())]
        for paths in cameras:
            rng.shuffle(paths)
        rng.shuffle(cameras)
        queues.append(cameras)
    person_order = rng.permutation(len(queues))
    ordered: list[Path] = []
    camera_turn = [0] * len(queues)
    remaining = sum(len(p) for cams in queues for p in cams)
    while len(ordered) < remaining:
        for index in person_order:
            cameras = queues[index]
            for _ in range(len(cameras)):
                paths = cameras[camera_turn[index] % len(cameras)]
                camera_turn[index] += 1
                if paths:
                    ordered.append(paths.pop())
                    break
    return ordered


def sample_calibration_images(root: str | Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` calibration images from ``root``, seeded and spread over identities and cameras.

    The first ``count`` entries of :func:`calibration_order` (all of them when
    fewer exist). Images are not read here; readers skip unreadable files and
    can take more from :func:`calibration_order` to make up the count.

    Args:
        root: a Market-1501 folder (``bounding_box_train/`` is used, never query or
            gallery) or a plain folder of person crops.
        count: how many images, >= 1.
        seed: sampling seed.

    Raises:
        DataError: no usable image; ValueError: ``count`` < 1.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    return calibration_order(root, seed)[:count]
