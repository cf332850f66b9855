"""The fixed validation set as a small manifest: photos by checksum, crop windows, kernels.

A manifest is a dict (stored as JSON plus a compressed `.npz` of kernels):

    {"format": 1, "seed": 0, "crop_size": 256, "crops_per_class": 64,
     "photos": [{"name", "sha256", "height", "width", "defocus"}, ...],
     "samples": [{"id", "photo", "class", "window": [top, left, height, width],
                  "whole": bool, "kernel": id or None}, ...],
     "kernels": {id: float32 (k, k) array summing to 1}}

Blur classes (the project's protocol): "short" shakes are
`random_psf(rng, exposure=None, fraction=1.0)` (the trajectory's own
`0.1 * U(0, 1)` exposure), "long" shakes `exposure=0.005, fraction=1.0`,
"unblurred" pairs are (sharp, sharp) and "defocus" pairs are (sharp, sharp)
crops of photos whose own content is out of focus (bokeh), which a deblurring
model must leave alone. Shake classes draw from every photo, "unblurred" from
the photos not listed as defocus, "defocus" from those listed. Crops are spread
round-robin over a class's photos, at seeded random (overlapping) windows.
"""

import hashlib
import json
import logging
import os

import numpy as np

from keras_deblur.cli import first_line
from keras_deblur.data.images import read_image, to_rgb_uint8
from keras_deblur.data.motion_blur import random_psf

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
SHAKE_CLASSES = ("short", "long")
STILL_CLASSES = ("unblurred", "defocus")
CLASSES = SHAKE_CLASSES + STILL_CLASSES
# Kernel options per shake class: keyword arguments of `random_psf`.
SHAKES = {
    "short": {"exposure": None, "fraction": 1.0},
    "long": {"exposure": 0.005, "fraction": 1.0},
}
# The manifest committed in the package, built from the held-out photos by
# `python -m keras_deblur.validation build` (see that module).
DEFAULT_MANIFEST = os.path.join(os.path.dirname(__file__), "validation_set.json")


def file_sha256(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _random_window(rng, height, width, crop_size):
    top = int(rng.integers(0, height - crop_size + 1))
    left = int(rng.integers(0, width - crop_size + 1))
    return [top, left, crop_size, crop_size]


def _class_photos(photos, name):
    if name in SHAKE_CLASSES:
        return photos
    return [photo for photo in photos if photo["defocus"] == (name == "defocus")]


def defocus_photo_names(photo_paths):
    """Base names of the photos that `open_photos.DEFOCUS` lists (natural defocus).

    `open_photos` writes `<stem>_<long side>.png`, so a file matches a listed
    source photo when its name minus the size suffix is that photo's stem.
    """
    from keras_deblur.data.open_photos import DEFOCUS

    stems = {os.path.splitext(name)[0] for name in DEFOCUS}
    names = [os.path.basename(path) for path in photo_paths]
    return [name for name in names if os.path.splitext(name)[0].rsplit("_", 1)[0] in stems]


def build_validation_manifest(
    photo_paths,
    defocus_names=(),
    seed=0,
    crops_per_class=64,
    crop_size=256,
    whole_photos=True,
):
    """Draws a fixed validation set from held-out photos.

    Args:
        photo_paths: list of str. Held-out photo files (never trained on);
            their base names must be unique, and each side at least `crop_size`.
        defocus_names: iterable of str. Base names of the photos whose content
            has natural defocus: their crops form the "defocus" class (left
            unblurred); they still serve the shake classes. Defaults to none.
        seed: int. Seed of the windows and kernels. Defaults to 0.
        crops_per_class: int. Crops in each class that has a photo. Defaults to 64.
        crop_size: int. Side of the square crops, a multiple of 4. Defaults to 256.
        whole_photos: bool. Also add every photo whole, once per shake class,
            and the defocus photos whole and unblurred. Defaults to True.

    Returns:
        The manifest dict (see the module docstring), kernels included.

    Raises:
        ValueError: one line naming the file or name at fault.
    """
    if crop_size % 4 or crop_size < 8:
        raise ValueError(f"crop_size must be a multiple of 4, >= 8. Received: {crop_size}")
    if crops_per_class < 1:
        raise ValueError(f"crops_per_class must be >= 1. Received: {crops_per_class}")
    defocus_names = set(defocus_names)
    photos = []
    for path in photo_paths:
        name = os.path.basename(path)
        if any(photo["name"] == name for photo in photos):
            raise ValueError(f"{path}: a second photo named {name}; photo names must be unique")
        height, width = to_rgb_uint8(read_image(path)).shape[:2]
        if min(height, width) < crop_size:
            raise ValueError(f"{path}: {width}x{height} is smaller than crop_size={crop_size}")
        photos.append(
            {
                "name": name,
                "sha256": file_sha256(path),
                "height": height,
                "width": width,
                "defocus": name in defocus_names,
            }
        )
    unknown = sorted(defocus_names - {photo["name"] for photo in photos})
    if unknown:
        raise ValueError(f"{unknown[0]}: listed as defocus but not among the photos")

    rng = np.random.default_rng(seed)
    samples, kernels = [], {}

    def add(class_name, photo, window, whole, sample_id):
        kernel_id = None
        if class_name in SHAKES:
            kernel_id = sample_id
            kernels[kernel_id] = random_psf(rng, **SHAKES[class_name])
        samples.append(
            {
                "id": sample_id,
                "photo": photo["name"],
                "class": class_name,
                "window": window,
                "whole": whole,
                "kernel": kernel_id,
            }
        )

    for class_name in CLASSES:
        sources = _class_photos(photos, class_name)
        if not sources:
            logger.warning("No photo for the %s class; it is left out", class_name)
            continue
        for index in range(crops_per_class):
            photo = sources[index % len(sources)]
            window = _random_window(rng, photo["height"], photo["width"], crop_size)
            add(class_name, photo, window, False, f"{class_name}_{index:03d}")
    if whole_photos:
        for index, photo in enumerate(photos):
            window = [0, 0, photo["height"], photo["width"]]
            for class_name in SHAKE_CLASSES:
                add(class_name, photo, window, True, f"whole_{class_name}_{index:02d}")
            if photo["defocus"]:
                add("defocus", photo, window, True, f"whole_defocus_{index:02d}")
    return {
        "format": MANIFEST_FORMAT,
        "seed": int(seed),
        "crop_size": int(crop_size),
        "crops_per_class": int(crops_per_class),
        "photos": photos,
        "samples": samples,
        "kernels": kernels,
    }


def kernels_path(manifest_path):
    """The `.npz` of kernels stored beside a manifest JSON file."""
    return os.path.splitext(os.fspath(manifest_path))[0] + "_kernels.npz"


def save_manifest(manifest, path):
    """Writes `manifest` as `path` (JSON) and its kernels as `kernels_path(path)` (npz)."""
    description = {key: value for key, value in manifest.items() if key != "kernels"}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as file:
        json.dump(description, file, indent=1)
        file.write("\n")
    np.savez_compressed(kernels_path(path), **manifest["kernels"])


def load_manifest(path=DEFAULT_MANIFEST):
    """Reads a manifest written by `save_manifest`, checking its layout.

    Every sample names a listed photo, its window lies inside that photo, its
    id is a plain file name (`pairs.materialise` writes `<id>_blurred.png`)
    and its kernel, if any, is a square finite array in the kernels file.

    Raises:
        FileNotFoundError, ValueError: one line naming the manifest or its
            kernels file.
    """
    path = os.fspath(path)
    try:
        with open(path) as file:
            manifest = json.load(file)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error.filename}: validation manifest file missing") from None
    except (ValueError, OSError, RecursionError) as error:  # RecursionError: nested too deep
        raise ValueError(f"{path}: unreadable validation manifest ({first_line(error)})") from None
    _check_layout(manifest, path)
    manifest["kernels"] = _load_kernels(kernels_path(path))
    missing = [
        s["kernel"] for s in manifest["samples"] if s["kernel"] not in (None, *manifest["kernels"])
    ]
    if missing:
        raise ValueError(f"{kernels_path(path)}: kernel {missing[0]!r} missing")
    return manifest


def _is_count(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_plain_name(value):
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and not any(c in value for c in "/\\\0")
    )


def _check_layout(manifest, path):
    """Raises ValueError naming `path` unless `manifest` has the module docstring's layout."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: a validation manifest is a JSON object")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(
            f"{path}: manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}"
        )
    photos, samples = manifest.get("photos"), manifest.get("samples")
    if not isinstance(photos, list) or not isinstance(samples, list):
        raise ValueError(f'{path}: "photos" and "samples" must be lists')
    sizes = {}
    for index, photo in enumerate(photos):
        if not (
            isinstance(photo, dict)
            and isinstance(photo.get("name"), str)
            and isinstance(photo.get("sha256"), str)
            and _is_count(photo.get("height"), 1)
            and _is_count(photo.get("width"), 1)
            and isinstance(photo.get("defocus"), bool)
        ):
            raise ValueError(
                f"{path}: photos[{index}] is not a {{name, sha256, height, width, "
                "defocus}} object"
            )
        sizes[photo["name"]] = photo["height"], photo["width"]
    for index, sample in enumerate(samples):
        problem = _sample_problem(sample, sizes)
        if problem:
            raise ValueError(f"{path}: samples[{index}] {problem}")


def _sample_problem(sample, sizes):
    """What is wrong with one sample (a short phrase), or None."""
    if not isinstance(sample, dict):
        return "is not an object"
    if not _is_plain_name(sample.get("id")):
        return f"id {sample.get('id')!r} is not a plain file name"
    if not isinstance(sample.get("photo"), str) or sample["photo"] not in sizes:
        return f"photo {sample.get('photo')!r} is not among the photos"
    if sample.get("class") not in CLASSES or not isinstance(sample.get("whole"), bool):
        return f"needs a class in {list(CLASSES)} and a bool whole"
    if "kernel" not in sample or not (
        sample["kernel"] is None or isinstance(sample["kernel"], str)
    ):
        return "kernel must be a kernel id or null"
    window = sample.get("window")
    if not (
        isinstance(window, list)
        and len(window) == 4
        and all(_is_count(v, 0) for v in window)
        and min(window[2:]) >= 1
    ):
        return "window must be [top, left, height, width], counts, height and width >= 1"
    top, left, height, width = window
    photo_height, photo_width = sizes[sample["photo"]]
    if top + height > photo_height or left + width > photo_width:
        return f"window {window} does not fit the {photo_width}x{photo_height} photo"
    return None


def _load_kernels(path):
    """`{id: float32 (k, k) array}` from a kernels `.npz`; one-line errors naming it."""
    try:
        with np.load(path) as stored:
            kernels = {key: stored[key].astype(np.float32) for key in stored.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: validation manifest file missing") from None
    except Exception as error:  # np.load: ValueError, OSError, BadZipFile, zlib.error, EOFError...
        raise ValueError(f"{path}: unreadable kernels ({first_line(error)})") from None
    for key, kernel in kernels.items():
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or not kernel.size:
            raise ValueError(f"{path}: kernel {key!r} has shape {kernel.shape}, not (k, k)")
        if not np.isfinite(kernel).all():
            raise ValueError(f"{path}: kernel {key!r} holds NaN or infinite values")
    return kernels
