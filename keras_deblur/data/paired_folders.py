"""Paired folders of (blurred, sharp) images on disk: found, checked and written.

Two layouts: GoPro `<root>/<scene>/{blur,sharp}/<name>` and flat
`<root>/{blur,sharp}/<name>`. Kept apart from the tf.data pipelines
(`datasets.py`) so that the evaluate and blur CLIs do not import TensorFlow.
"""

import collections
import logging
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from keras_deblur.data.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    read_header_checked,
    read_image,
    write_image,
)
from keras_deblur.data.motion_blur import synthesize_blur

logger = logging.getLogger(__name__)

BLUR_FOLDER = "blur"
SHARP_FOLDER = "sharp"
KERNEL_FOLDER = "kernels"


def probe_image(path):
    """Checks that a file is an image without decoding its pixels, if possible.

    Pillow reads the header (size, EXIF orientation, pixel budget); for PNG it
    also checks every chunk's CRC. A file Pillow cannot parse is decoded with
    OpenCV before being declared bad.

    Args:
        path: str. Image file.

    Returns:
        `(height, width)` upright, as `read_image` returns the pixels.

    Raises:
        ImageReadError: one line naming the file and the problem.
    """
    header = read_header_checked(path)
    if header is None:
        return read_image(path).shape[:2]
    if header.format == "PNG":
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception:  # Pillow raises many types; OpenCV has the final word.
            return read_image(path).shape[:2]
    return header.display_size


def check_image_files(paths):
    """Splits files into usable images and skipped ones, warning about each skip.

    Args:
        paths: list of str.

    Returns:
        `(usable, sizes, problems)`: usable paths, their `(height, width)`, and
        one-line messages for the skipped files.
    """
    usable, sizes, problems = [], [], []
    for path in paths:
        try:
            sizes.append(probe_image(path))
            usable.append(path)
        except ImageReadError as error:
            logger.warning("Skipping %s", error)
            problems.append(str(error))
    return usable, sizes, problems


def report_skips(source, total, skipped, what="files"):
    """Warns that `skipped` of `total` were left out; raises ValueError when all were."""
    if skipped:
        logger.warning(
            "%s: skipped %d of %d %s that could not be used; using %d.",
            source,
            skipped,
            total,
            what,
            total - skipped,
        )
    if skipped == total:
        raise ValueError(f"{source}: none of the {total} {what} could be used (see warnings above)")


def _pairing_key(relative_path):
    """`('scene/x', 'blur')` for `scene/blur/x.png` or `blur/scene/x.png`; None elsewhere."""
    parts = relative_path.split(os.sep)
    folders = parts[:-1]
    for index in range(len(folders) - 1, -1, -1):
        if folders[index] in (BLUR_FOLDER, SHARP_FOLDER):
            rest = folders[:index] + folders[index + 1 :] + [os.path.splitext(parts[-1])[0]]
            return "/".join(rest), folders[index]
    return None


def find_image_pairs(root):
    """Matches blurred and sharp images under `root` by relative path.

    Two layouts: GoPro `<root>/<scene>/{blur,sharp}/<name>` (pass a split
    folder such as `GOPRO_Large/train`) and flat `<root>/{blur,sharp}/<name>`.
    The file extension may differ between the two sides.

    Args:
        root: str. Folder to search recursively.

    Returns:
        Sorted list of `(blurred_path, sharp_path)`.

    Raises:
        FileNotFoundError: no `blur`/`sharp` images under `root`.
        ValueError: files without a partner (listed) or two files with one key.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    found = {BLUR_FOLDER: {}, SHARP_FOLDER: {}}
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = os.path.join(folder, name)
            keyed = _pairing_key(os.path.relpath(path, root))
            if keyed is None:
                continue
            key, side = keyed
            if key in found[side]:
                raise ValueError(f"{root}: {found[side][key]} and {path} pair with the same file")
            found[side][key] = path
    blurred, sharp = found[BLUR_FOLDER], found[SHARP_FOLDER]
    if not blurred and not sharp:
        raise FileNotFoundError(
            f"{root}: no images in blur/ and sharp/ folders (expected <root>/blur/ and "
            "<root>/sharp/, or <root>/<scene>/blur/ and <root>/<scene>/sharp/)"
        )
    unmatched = sorted(
        [f"{os.path.relpath(p, root)} (no sharp)" for k, p in blurred.items() if k not in sharp]
        + [f"{os.path.relpath(p, root)} (no blur)" for k, p in sharp.items() if k not in blurred]
    )
    if unmatched:
        shown = ", ".join(unmatched[:10]) + (", ..." if len(unmatched) > 10 else "")
        raise ValueError(f"{root}: {len(unmatched)} files have no partner: {shown}")
    return [(blurred[key], sharp[key]) for key in sorted(blurred)]


def _relative_stems(paths):
    """Paths relative to their common folder, without extension; `a.png` and `a.jpg`
    side by side keep their extension in the name (`a_jpg`) so neither overwrites the other."""
    absolute = [os.path.abspath(path) for path in paths]
    root = os.path.commonpath([os.path.dirname(path) for path in absolute])
    stems = [os.path.splitext(os.path.relpath(path, root)) for path in absolute]
    counts = collections.Counter(stem for stem, _ in stems)
    return [
        stem if counts[stem] == 1 else f"{stem}_{extension.lstrip('.').lower()}"
        for stem, extension in stems
    ]


def kernel_to_png(kernel):
    """A kernel as a 16-bit image with its peak at 65535 (divide by the sum for weights)."""
    return np.rint(kernel / kernel.max() * 65535).astype(np.uint16)


def write_blurred_dataset(
    sharp_paths,
    output,
    blurs_per_image=1,
    save_kernels=False,
    seed=0,
    progress=True,
    **blur_options,
):
    """Blurs sharp photos and writes a paired dataset that `paired_dataset` reads.

    Writes `<output>/blur/<name>.png` and `<output>/sharp/<name>.png`, where
    `<name>` is the photo's path relative to the photos' common folder (with a
    `_<k>` suffix when `blurs_per_image > 1`), and with `save_kernels`
    `<output>/kernels/<name>.png` (see `kernel_to_png`). PNG keeps both sides
    lossless; bit depth and channels are kept.

    Args:
        sharp_paths: list of str. Sharp photos; unreadable ones are skipped
            with a one-line warning each.
        output: str. Dataset folder.
        blurs_per_image: int. Blurred versions per photo. Defaults to 1.
        save_kernels: bool. Also write the kernels. Defaults to False.
        seed: int. Photo `i` uses the random stream `(seed, i)`. Defaults to 0.
        progress: bool. Show a progress bar. Defaults to True.
        **blur_options: see `motion_blur.synthesize_blur`.

    Returns:
        `(pairs_written, problems)`: number of pairs written, and one-line
        messages naming the skipped files.

    Raises:
        ValueError: bad arguments, or no readable photo.
    """
    if blurs_per_image < 1:
        raise ValueError(f"blurs_per_image must be >= 1. Received: {blurs_per_image}")
    sharp_paths = list(sharp_paths)
    names = dict(zip(sharp_paths, _relative_stems(sharp_paths), strict=True))
    usable, _, problems = check_image_files(sharp_paths)
    report_skips(os.fspath(output), len(sharp_paths), len(problems))
    written = 0
    for index, path in enumerate(tqdm(usable, desc="Blurring", unit="photo", disable=not progress)):
        rng = np.random.default_rng([seed, index])
        try:
            sharp = read_image(path)
        except ImageReadError as error:
            logger.warning("Skipping %s", error)
            problems.append(str(error))
            continue
        for copy in range(blurs_per_image):
            name = names[path] + (f"_{copy}" if blurs_per_image > 1 else "") + ".png"
            blurred, kernel = synthesize_blur(sharp, rng, **blur_options)
            write_image(os.path.join(output, BLUR_FOLDER, name), blurred)
            write_image(os.path.join(output, SHARP_FOLDER, name), sharp)
            if save_kernels:
                write_image(os.path.join(output, KERNEL_FOLDER, name), kernel_to_png(kernel))
            written += 1
    return written, problems
