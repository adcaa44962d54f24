"""Reading image files: the one reader every image folder and image file in edge-reid goes through.

An image that cannot be used is never fatal on its own: readers skip it and
record its path and the reason (:class:`SkippedFile`), so a caller can count
and name what it left out. A file is unusable when it is empty, cannot be
decoded by OpenCV, or is a JPEG without its end-of-image marker (a truncated
file: libjpeg would return the missing rows grey with only a warning on
stderr, and the half-grey picture would be used as if it were real), or is
not a regular file (a pipe or device would block or never end). An image whose
header claims more than :func:`max_image_pixels` pixels is refused before it
is decoded: a JPEG or PNG of a few hundred bytes can claim 30000x30000 pixels,
and decoding it fills 2.7 GB (a "decompression bomb", enough to kill a Jetson
with 8 GB).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from edge_reid.errors import DataError
from edge_reid.folders import folder_entries, read_regular_file, require_folder

#: File name suffixes (lower case) read as images everywhere: all are decoded by OpenCV's own codecs.
IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")

#: Suffixes (lower case) of HEIC/HEIF photos (an iPhone's default): OpenCV cannot decode them; a reader names them
#: with what to do (convert to JPEG) instead of "not a decodable image".
HEIF_SUFFIXES = (".heic", ".heif")
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")

#: Default of :func:`max_image_pixels`: 2**28 (268 megapixels, 805 MB decoded as BGR). The largest phone
#: photos (200 MP sensors: 16320x12240) fit with room to spare, and a decoded image still fits beside a
#: model on an 8 GB Jetson; OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, 2**30 = 3.2 GB) does not.
DEFAULT_MAX_IMAGE_PIXELS = 2**28
#: Environment variable that raises (or lowers) :func:`max_image_pixels`.
MAX_IMAGE_PIXELS_ENV = "EDGE_REID_MAX_IMAGE_PIXELS"

_JPEG_START = b"\xff\xd8\xff"
_JPEG_START_OF_SCAN = b"\xff\xda"
_JPEG_END_OF_IMAGE = b"\xff\xd9"


@dataclass(frozen=True)
class SkippedFile:
    """A file left out, and why (``"empty file"``, ``"truncated JPEG ..."``, ``"malformed name"``, ...)."""

    path: Path
    reason: str


def describe_skipped(skipped: Sequence[SkippedFile], most: int = 10) -> str:
    """One line naming skipped files: ``"2 files: a.jpg (empty file), b.jpg (not a decodable image)"``.

    At most ``most`` files are named; the rest are counted (``"... and 40 more"``).
    """
    count = len(skipped)
    named = ", ".join(f"{item.path.name} ({item.reason})" for item in skipped[:most])
    more = f" and {count - most} more" if count > most else ""
    return f"{count} file{'s' if count != 1 else ''}: {named}{more}"


class UnreadableImageError(DataError):
    """An image file is empty, truncated, or cannot be decoded.

    Attributes:
        path: the file.
        reason: why, in a few words (the message is ``"{path}: {reason}"``).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason

    def skipped(self) -> SkippedFile:
        """The error as a :class:`SkippedFile` record."""
        return SkippedFile(self.path, self.reason)


def check_bgr_image(image: object, what: str = "image") -> None:
    """Check that ``image`` is a non-empty (H, W, 3) uint8 BGR array, the form of every frame and crop.

    OpenCV writes into a preallocated uint8 buffer only when the source matches it; a grey,
    float or 4-channel image would make it allocate a new array instead and leave the buffer
    holding the previous picture, so images are checked before they are used.

    Args:
        image: the array to check.
        what: how to name it in the error, e.g. ``"frame"`` or ``"crop 3"``.

    Any numpy layout of an (H, W, 3) uint8 array is taken as it is: views (``frame[..., ::-1]``, a crop
    of a larger array, ``np.rot90``), Fortran order, read-only arrays (``np.frombuffer``, a ROS message's
    buffer) and ``np.memmap``.

    Raises:
        ValueError: not a numpy array, not 3-D with 3 channels, not uint8, or empty; the message names
            its type or shape and dtype, and how to convert it where that is known (grey, BGRA, 16-bit,
            float, channels first, a camera read that failed).
    """
    if not isinstance(image, np.ndarray):
        problem = f"{what} must be a (H, W, 3) uint8 BGR numpy array, got {type(image).__name__}"
    elif image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        problem = f"{what} must be a non-empty (H, W, 3) uint8 BGR image, got {image.shape} {image.dtype}"
    else:
        return
    hint = _conversion_hint(image)
    raise ValueError(f"{problem}: {hint}" if hint else problem)


def _conversion_hint(image: object) -> str:
    """What to do to make ``image`` the (H, W, 3) uint8 BGR frame edge-reid takes, in a few words
    (``""`` when nothing is known to fix): frames from other libraries, cameras and robot messages
    come grey, with an alpha channel, in 16 bits, as 0..1 floats or channels first."""
    if image is None:
        return "no image: the camera's read failed (cv2.VideoCapture.read() returned False)"
    if not isinstance(image, np.ndarray):
        return "np.asarray(image) (an RGB image, e.g. PIL's: np.asarray(image)[..., ::-1], a view is fine)"
    fixes = []
    shape = image.shape
    if image.size == 0:
        fixes.append("the image is empty: check the camera's read")
    elif image.ndim == 2 or (image.ndim == 3 and shape[2] == 1):
        fixes.append("grey: cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)")
    elif image.ndim == 3 and shape[2] == 4:
        fixes.append("drop the alpha channel: cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) (RGBA: cv2.COLOR_RGBA2BGR)")
    elif image.ndim == 3 and shape[0] in (1, 3, 4) and shape[2] > 4:
        fixes.append("channels first: image.transpose(1, 2, 0)")
    if image.dtype == np.uint16:
        fixes.append("16 bits: scale to 0..255, e.g. (image >> 8).astype(np.uint8)")
    elif image.dtype.kind == "f":
        fixes.append("floats: (image * 255).clip(0, 255).astype(np.uint8) for 0..1 values, image.clip(0, 255).astype(np.uint8) for 0..255")
    elif image.dtype != np.uint8:
        fixes.append("convert it to uint8 values 0..255")
    return "; ".join(fixes)


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` names an image by its suffix (:data:`IMAGE_SUFFIXES`, any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder`` (by suffix, see :data:`IMAGE_SUFFIXES`), sorted by name.

    A symbolic link with an image's name is listed even when it leads nowhere (broken, or a loop): reading
    it then fails, and the reader skips it by name like any unreadable image.

    Raises:
        DataError: ``folder`` is not a folder, or cannot be read.
    """
    return [path for path in folder_entries(folder) if (path.is_file() or path.is_symlink()) and is_image_file(path)]


def jpeg_is_truncated(data: bytes) -> bool:
    """True for JPEG bytes whose last scan has no end-of-image marker (``FF D9``) after it.

    Inside entropy-coded data ``FF`` is always followed by ``00`` or a restart
    marker, so ``FF D9`` after the last start-of-scan (``FF DA``) appears only
    when the file is whole; bytes after it (some cameras append data) are allowed.
    ``False`` for bytes that are not a JPEG.
    """
    if not data.startswith(_JPEG_START):
        return False
    return data.rfind(_JPEG_END_OF_IMAGE) < data.rfind(_JPEG_START_OF_SCAN)


def max_image_pixels() -> int:
    """Most pixels (width x height) an image file may claim: ``$EDGE_REID_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_IMAGE_PIXELS` (2**28). Above 2**30, OpenCV's ``OPENCV_IO_MAX_IMAGE_PIXELS`` must be raised too.

    Raises:
        DataError: the environment variable is not a whole number >= 1.
    """
    text = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{MAX_IMAGE_PIXELS_ENV}={text!r} is not a whole number of pixels >= 1 (e.g. 400000000); "
                        f"unset it for the default {DEFAULT_MAX_IMAGE_PIXELS}")
    return value


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a TIFF's (or BigTIFF's) first image, the one OpenCV decodes; None when not found."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    offset = struct.unpack_from(order + ("Q" if big else "I"), data, 8 if big else 4)[0]
    count_format, entry_format = (order + "Q", order + "HHQQ") if big else (order + "H", order + "HHII")
    count = struct.unpack_from(count_format, data, offset)[0]
    offset += struct.calcsize(count_format)
    size: dict[int, int] = {}
    for index in range(min(count, 4096)):
        tag, kind, _, value = struct.unpack_from(entry_format, data, offset + index * struct.calcsize(entry_format))
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) is left-justified in the value field
            size[tag] = (value >> (48 if big else 16) if order == ">" else value & 0xFFFF) if kind == 3 else value
    return (size[256], size[257]) if len(size) == 2 else None


def image_file_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels that image bytes claim in their header, read without decoding them.

    Knows PNG, JPEG, BMP, WebP and TIFF (the formats of :data:`IMAGE_SUFFIXES`); None for other or
    malformed bytes (OpenCV's own limits then apply when they are decoded).
    """
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack_from(">II", data, 16)
        if data.startswith(_JPEG_START):
            index = 2
            while index + 9 <= len(data):
                if data[index] != 0xFF:
                    return None
                marker = data[index + 1]
                if marker == 0xFF:  # fill byte
                    index += 1
                    continue
                if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # no length
                    index += 2
                    continue
                if marker == 0xDA:  # start of scan: no frame header before it
                    return None
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                    height, width = struct.unpack_from(">HH", data, index + 5)
                    return (width, height) if height else None  # 0: height given later (DNL), rare
                index += 2 + struct.unpack_from(">H", data, index + 2)[0]
            return None
        if data.startswith(b"BM"):
            if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack_from("<HH", data, 18)
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(width), abs(height)  # a negative height means top-down rows
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
            if chunk == b"VP8L":
                bits = struct.unpack_from("<I", data, 21)[0]
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                width, height = struct.unpack_from("<HH", data, 26)
                return width & 0x3FFF, height & 0x3FFF
            return None
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_size(data)
    except struct.error:  # the header ends early: the decoder will say it is not an image
        return None
    return None


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as (h, w, 3) uint8 BGR (OpenCV; EXIF orientation applied).

    Grey, 16-bit and alpha images are converted to 8-bit BGR.

    Raises:
        UnreadableImageError: the file is missing or unreadable, not a regular
            file (a pipe or device), empty, a truncated JPEG, claims more than
            :func:`max_image_pixels` pixels (checked before decoding: the
            message says how to raise the limit), or not an image OpenCV can
            decode (a HEIC/HEIF photo is named as one, with what to do).
        DataError: ``$EDGE_REID_MAX_IMAGE_PIXELS`` is not a whole number >= 1.
    """
    limit = max_image_pixels()
    try:
        data = read_regular_file(path)
        if data is None:  # a pipe or device would block or never end
            raise UnreadableImageError(path, "not a regular file (a device, pipe or socket)")
    except OSError as exc:
        raise UnreadableImageError(path, f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    if not data:
        raise UnreadableImageError(path, "empty file")
    if jpeg_is_truncated(data):
        raise UnreadableImageError(path, "truncated JPEG (no end-of-image marker)")
    size = image_file_size(data)
    if size is not None and size[0] * size[1] > limit:
        width, height = size
        raise UnreadableImageError(
            path, f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels, {width * height * 3 / 1e9:.1f} GB "
            f"decoded) is over the limit of {limit / 1e6:.0f} megapixels; downscale it, or raise the limit with the "
            f"environment variable {MAX_IMAGE_PIXELS_ENV}, e.g. {MAX_IMAGE_PIXELS_ENV}={2 * limit}")
    import cv2  # here, not at the top: is_image_file and list_images (output path checks) need no OpenCV

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        if Path(path).suffix.lower() in HEIF_SUFFIXES or (data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS):
            raise UnreadableImageError(path, "HEIC/HEIF photo, which OpenCV cannot decode: convert it to JPEG or PNG")
        raise UnreadableImageError(path, "not a decodable image")
    return image


@dataclass
class ImageChunk:
    """Images read from a run of files.

    Attributes:
        images: the decoded (h, w, 3) uint8 BGR images.
        indices: for each image, its position in the list of paths given to the reader.
        skipped: files that could not be read, with the reason.
    """

    images: list[np.ndarray]
    indices: list[int]
    skipped: list[SkippedFile] = field(default_factory=list)


def read_images_in_chunks(paths: Sequence[Path], chunk: int = 256) -> Iterator[ImageChunk]:
    """Read ``paths`` in order, ``chunk`` files at a time, skipping unreadable ones.

    Keeps at most one chunk of images in memory, so a whole Market-1501 gallery
    (about 20 000 crops) streams through in constant memory.

    Raises:
        ValueError: ``chunk`` < 1.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    for start in range(0, len(paths), chunk):
        part = ImageChunk([], [])
        for offset, path in enumerate(paths[start : start + chunk]):
            try:
                part.images.append(read_image(path))
            except UnreadableImageError as exc:
                part.skipped.append(exc.skipped())
                continue
            part.indices.append(start + offset)
        yield part


def read_images(paths: Iterable[Path], limit: int | None = None) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
    """Read images in order until ``limit`` readable ones (all when None), skipping unreadable files.

    Returns:
        (images as (h, w, 3) uint8 BGR, their paths, skipped files with the reason).
    """
    images, used, skipped = [], [], []
    for path in paths:
        if limit is not None and len(images) >= limit:
            break
        try:
            images.append(read_image(path))
        except UnreadableImageError as exc:
            skipped.append(exc.skipped())
            continue
        used.append(Path(path))
    return images, used, skipped


def read_crop_folder(folder: str | Path, limit: int | None = None) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
    """Read a plain folder of person-crop images (sorted by name), skipping unreadable ones.

    Args:
        folder: the folder; only files with an image suffix are read.
        limit: stop after this many readable images (None: all).

    Returns:
        (images as (h, w, 3) uint8 BGR, their paths, skipped files with the reason).

    Raises:
        DataError: the folder is not found or holds no readable image.
    """
    folder = require_folder(folder, "crop folder", "give a folder of person crops (.jpg/.png)")
    images, used, skipped = read_images(list_images(folder), limit)
    if not images:
        raise DataError(f"{folder}: no readable image ({len(skipped)} unreadable); expected .jpg/.png person crops")
    return images, used, skipped
