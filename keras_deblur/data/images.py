"""Reading and writing image files with one-line errors that name the file."""

import glob
import logging
import os
import uuid

import cv2
import numpy as np
from PIL import Image

from keras_deblur.data.image_metadata import (
    PixelBudgetError,
    apply_orientation,
    embed_metadata,
    read_header,
)

logger = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".gif",
)


# Pixels a reader decodes at most, checked from the file header first (Pillow's
# MAX_IMAGE_PIXELS idea): a 100-megapixel camera's 11648x8736 photos fit; a
# 100000x100000 PNG of a few kilobytes (30 GB decoded) is refused. Change it
# with `set_max_pixels` or the CLIs' --max_pixels.
MAX_PIXELS = 120_000_000
# OpenCV's default, stated: what `write_image` uses for JPEG files.
JPEG_QUALITY = 95


class ImageReadError(ValueError):
    """An image file is missing, empty, corrupt, too large or not an image."""


def set_max_pixels(max_pixels):
    """Sets the pixel budget of every reader (`read_image`, training data, calibration).

    Pillow's own decompression-bomb limit is raised with it where needed, since
    headers are read with Pillow.
    """
    global MAX_PIXELS
    if int(max_pixels) < 1:
        raise ValueError(f"max_pixels must be >= 1. Received: max_pixels={max_pixels}")
    MAX_PIXELS = int(max_pixels)
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def check_image_file(path):
    """Returns `path` as a str if it names a non-empty file.

    Raises:
        ImageReadError: "<path>: no such file" or "<path>: empty file (0 bytes)".
    """
    path = os.fspath(path)
    if os.path.islink(path) and not os.path.exists(path):
        raise ImageReadError(f"{path}: broken or looping symbolic link")
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    return path


def read_header_checked(path, max_pixels=None):
    """`path`'s header (see `image_metadata.read_header`) within the pixel budget.

    Args:
        path: str or path-like. Image file.
        max_pixels: int or None. Budget; None means `MAX_PIXELS`.

    Returns:
        `ImageHeader`, or None for files Pillow cannot parse.

    Raises:
        ImageReadError: missing or empty file, or more pixels than the budget.
    """
    path = check_image_file(path)
    try:
        return read_header(path, MAX_PIXELS if max_pixels is None else max_pixels)
    except PixelBudgetError as error:
        raise ImageReadError(str(error)) from None


def read_image(path, max_pixels=None):
    """Reads an image file as an upright RGB(A) or grayscale array.

    `read_image_and_header` without the header; see it for the details.
    """
    return read_image_and_header(path, max_pixels)[0]


def read_image_and_header(path, max_pixels=None):
    """Reads an image file as an upright array, with the header it was read with.

    The header is read first: a file claiming more than `max_pixels` pixels is
    refused before any decoding, and the EXIF orientation (phone photos) is
    applied so the array looks as viewers show the file. Animated files give
    their first frame.

    Args:
        path: str or path-like. Image file (PNG, JPEG, TIFF, WebP, ...).
        max_pixels: int or None. Pixel budget; None means `MAX_PIXELS`.

    Returns:
        `(image, header)`: `np.ndarray` of shape `(height, width)` for
        grayscale files or `(height, width, 3|4)` in RGB(A) order, dtype uint8
        or uint16 as stored in the file; and the `ImageHeader` (None for files
        Pillow cannot parse), whose ICC profile and EXIF `write_image` keeps.

    Raises:
        ImageReadError: one line naming the file and the problem.
    """
    path = os.fspath(path)
    header = read_header_checked(path, max_pixels)
    data = np.fromfile(path, dtype=np.uint8)
    image = _decode(path, data) if _png_chunks_fit(data) else None
    if image is None:
        problem = "not a readable image (corrupt or unsupported format)"
        if header is not None:
            problem = (
                f"truncated or corrupt {header.format} data "
                f"(header says {header.width}x{header.height})"
            )
        raise ImageReadError(f"{path}: {problem}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{path}: unsupported pixel type {image.dtype} (expected 8 or 16 bit)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    if header is not None and header.orientation != 1:
        image = apply_orientation(image, header.orientation)
    if header is not None and header.frames > 1:
        logger.warning("%s: animated (%d frames); using the first frame", path, header.frames)
    return image, header


def _png_chunks_fit(data):
    """False for a PNG whose chunks claim more bytes than the file holds; True otherwise.

    OpenCV allocates (and zeroes) a chunk's claimed length before reading it:
    a 130-byte file claiming a 4 GB chunk took 4 GB and 46 s (found by
    tests/fuzz/fuzz_read_image.py). Pillow stops at the first IDAT, so it
    misses a claim in a later chunk, and OpenCV gets the files Pillow cannot
    parse too.
    """
    if data[:8].tobytes() != _PNG_SIGNATURE:
        return True
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4].tobytes(), "big")
        if position + 12 + length > len(data):
            return False
        if data[position + 4 : position + 8].tobytes() == b"IEND" and length == 0:
            return True  # OpenCV reads on past an IEND that is not empty
        position += 12 + length
    return True


def _decode(path, data):
    """OpenCV's decoder with its warnings muted: our error names the file in one line."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. OpenCV's own size limit on a header Pillow missed
        message = str(error).strip().splitlines()[-1]
        raise ImageReadError(f"{path}: cannot be decoded ({message})") from None
    finally:
        cv2.utils.logging.setLogLevel(level)


def to_rgb_uint8(image):
    """Gray -> RGB, RGBA -> RGB (alpha dropped), 16 -> 8 bit (rounded).

    For code that needs plain 8-bit RGB: training pairs, metrics, calibration.
    `keras_deblur.inference.deblur` keeps the input's layout instead.
    """
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def write_image(path, image, header=None, jpeg_quality=JPEG_QUALITY):
    """Writes an RGB(A) or grayscale uint8/uint16 array, creating parent folders.

    The write is atomic: the file is encoded in memory, written to a hidden
    temporary file in the same folder and renamed over `path`, so `path` never
    holds a half-written image (a run killed mid-write leaves the old file or
    none, and at worst a `.<name>.<id>.tmp` beside it).

    Args:
        path: str or path-like. Output file; the extension picks the format.
        image: `np.ndarray` `(height, width)` or `(height, width, 3|4)`, RGB(A),
            upright (as `read_image` returns it).
        header: `ImageHeader` or None. The source file's header: its ICC
            profile and EXIF (orientation reset to upright) are written into
            JPEG and PNG files, so the output looks like the input in a viewer.
            Other formats are written without them.
        jpeg_quality: int in [0, 100]. Defaults to `JPEG_QUALITY` (95).
    """
    path = os.fspath(path)
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    extension = os.path.splitext(path)[1] or ".png"
    jpeg = extension.lower() in (".jpg", ".jpeg")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if jpeg else []
    try:
        ok, encoded = cv2.imencode(extension, image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise OSError(f"{path}: could not encode the image as {extension}")
    encoded = encoded.tobytes()
    if header is not None:
        encoded = embed_metadata(encoded, extension, header.icc_profile, header.exif)
    write_atomically(path, encoded)


def write_atomically(path, data):
    """Writes bytes to `path` through a temporary file in its folder and `os.replace`.

    A rename within one folder (one file system) is atomic, so readers see the
    old file or the whole new one. The temporary file is removed if the write
    fails; only a killed process can leave one behind.
    """
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with 0o666 lets the umask decide the permissions, as open() does
    # (mkstemp would make every output 0600).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def list_images(spec):
    """Lists image files from a file, a folder (recursively) or a glob pattern.

    Args:
        spec: str. A file path, a directory, or a glob such as `photos/*.jpg`.

    Returns:
        Sorted list of paths. A single file is returned as given, whatever its
        extension, so that the caller reports it if it is not an image.

    Raises:
        FileNotFoundError: if nothing matches.
    """
    if os.path.isfile(spec):
        return [spec]
    if os.path.isdir(spec):
        paths = [
            os.path.join(root, name)
            for root, _, names in os.walk(spec)
            for name in names
            if name.lower().endswith(IMAGE_EXTENSIONS)
        ]
    else:
        paths = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    if not paths:
        raise FileNotFoundError(f"{spec}: no image files found")
    return sorted(paths)
