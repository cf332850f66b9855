"""Reading and writing image files with one-line errors that name the file."""

import glob
import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageReadError(ValueError):
    """An image file is missing, empty, corrupt or not an image."""


def check_image_file(path):
    """Returns `path` as a str if it names a non-empty file.

    Raises:
        ImageReadError: "<path>: no such file" or "<path>: empty file (0 bytes)".
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageReadError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    return path


def read_image(path):
    """Reads an image file as an RGB(A) or grayscale array.

    Args:
        path: str or path-like. Image file (PNG, JPEG, TIFF, ...).

    Returns:
        `np.ndarray` of shape `(height, width)` for grayscale files or
        `(height, width, 3|4)` in RGB(A) order; dtype uint8 or uint16 as
        stored in the file.

    Raises:
        ImageReadError: one line naming the file and the problem.
    """
    path = check_image_file(path)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{path}: unsupported pixel type {image.dtype} (expected 8 or 16 bit)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return image


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


def write_image(path, image):
    """Writes an RGB(A) or grayscale uint8/uint16 array, creating parent folders.

    Args:
        path: str or path-like. Output file; the extension picks the format.
        image: `np.ndarray` `(height, width)` or `(height, width, 3|4)`, RGB(A).
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
    ok, encoded = cv2.imencode(extension, image)
    if not ok:
        raise OSError(f"{path}: could not encode the image as {extension}")
    encoded.tofile(path)


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
