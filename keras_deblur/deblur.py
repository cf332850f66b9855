"""Deblur photos with the shipped pretrained generator or one you trained.

    python -m keras_deblur.deblur --input photos/ --output_dir sharp/
    python -m keras_deblur.deblur --weights G.keras --input photos/ --output_dir sharp/

Inputs can be a file, a folder (searched recursively) or a glob. Each result
keeps the input's relative path and format under --output_dir, upright (the
EXIF orientation of phone photos is applied), with the input's ICC profile and
EXIF where the format carries them (JPEG, PNG); JPEGs are written at quality 95.
A file that cannot be read (corrupt, truncated, over the --max_pixels budget)
is reported in one line and skipped; the exit code is 1 if any file failed.
Every output is written atomically, so after a run is killed, --skip_existing
resumes it: photos whose outputs exist are skipped, and counted.
"""

import os
import sys

import numpy as np
from absl import app, flags
from tqdm import tqdm

from keras_deblur.cli import reports_errors
from keras_deblur.data.images import (
    MAX_PIXELS,
    ImageReadError,
    list_images,
    read_image_and_header,
    set_max_pixels,
    write_image,
)
from keras_deblur.inference import DEFAULT_TILE_OVERLAP, deblur
from keras_deblur.models import load_generator
from keras_deblur.pretrained import DEFAULT_PRESET, PRESETS
from keras_deblur.process_memory import release_freed_memory, use_system_allocator


def output_paths(inputs, output_dir):
    """Maps input paths to output paths that keep their paths relative to a common folder."""
    folders = [os.path.dirname(os.path.abspath(path)) for path in inputs]
    root = os.path.commonpath(folders)
    return [
        os.path.join(output_dir, os.path.relpath(os.path.abspath(path), root)) for path in inputs
    ]


def compare_path(path):
    stem, extension = os.path.splitext(path)
    return f"{stem}_compare{extension}"


def outputs_exist(target, compare=False):
    """True if `target` (and with `compare`, its compare file) is already written.

    Outputs are written atomically (`write_image`), so a file under its final
    name is a whole one.
    """
    return os.path.exists(target) and (not compare or os.path.exists(compare_path(target)))


def side_by_side(left, right):
    """Concatenates two images of the same shape horizontally."""
    return np.concatenate([left, right], axis=1)


def deblur_files(
    model,
    inputs,
    output_dir,
    tile_size=None,
    tile_overlap=None,
    compare=False,
    progress=True,
    skip_existing=False,
):
    """Deblurs image files, writing results under `output_dir`.

    Args:
        model: the generator.
        inputs: list of image paths.
        output_dir: str. Results keep each input's path relative to the
            inputs' common folder, and its format.
        tile_size, tile_overlap: see `keras_deblur.inference.deblur`.
        compare: bool. Also write `<name>_compare.<ext>` with the input and the
            result side by side.
        progress: bool. Show a progress bar.
        skip_existing: bool. Leave alone inputs whose outputs exist
            (`outputs_exist`): resumes a run that was stopped.

    Returns:
        `(written, failures)`: output paths, and `(input path, message)` pairs
        for files that could not be processed. Skipped inputs are in neither.
    """
    written, failures = [], []
    bar = tqdm(
        list(zip(inputs, output_paths(inputs, output_dir), strict=True)),
        disable=not progress,
        unit="image",
        desc="Deblurring",
    )
    for source, target in bar:
        if os.path.realpath(source) == os.path.realpath(target):
            failures.append(
                (source, f"{source}: refusing to overwrite the input; pick another output_dir")
            )
            continue
        if skip_existing and outputs_exist(target, compare):
            continue
        try:
            image, header = read_image_and_header(source)
            result = deblur(model, image, tile_size=tile_size, tile_overlap=tile_overlap)
            write_image(target, result, header=header)
            if compare:
                write_image(compare_path(target), side_by_side(image, result), header=header)
        except (ImageReadError, ValueError, OSError, MemoryError) as error:
            message = str(error) if source in str(error) else f"{source}: {error}"
            failures.append((source, message))
            tqdm.write(f"error: {message}", file=sys.stderr)
            continue
        finally:
            # Without this, the first large photo's activations stay resident for the
            # rest of a run (`keras_deblur.process_memory`).
            release_freed_memory()
        written.append(target)
    return written, failures


def _define_flags():
    """Defines the flags; only when run as a program, so importing this module
    next to another CLI module cannot clash on flag names."""
    flags.DEFINE_string(
        "weights",
        DEFAULT_PRESET,
        "Generator: .keras, .weights.h5 or .tflite file (any python -m export.tflite variant, "
        f"run on every CPU), or a pretrained preset ({', '.join(PRESETS)}).",
    )
    flags.DEFINE_string("input", None, "Image file, folder (recursive) or glob pattern.")
    flags.DEFINE_string("output_dir", None, "Folder for the deblurred images.")
    flags.DEFINE_integer(
        "tile",
        None,
        "Tile side in pixels (multiple of 4) for large photos; 0 never tiles. "
        "Default: tile only photos above 4 megapixels.",
    )
    flags.DEFINE_integer(
        "tile_overlap",
        None,
        f"Overlap between tiles in pixels (default: {DEFAULT_TILE_OVERLAP}, at most a quarter of "
        "the tile).",
    )
    flags.DEFINE_integer(
        "max_pixels", MAX_PIXELS, "Refuse images whose header claims more pixels than this."
    )
    flags.DEFINE_boolean(
        "compare", False, "Also write <name>_compare.<ext>: blurred | deblurred side by side."
    )
    flags.DEFINE_boolean(
        "skip_existing",
        False,
        "Skip photos whose outputs already exist (resume a stopped run).",
    )


@reports_errors(FileNotFoundError, ValueError)
def main(argv):
    del argv
    FLAGS = flags.FLAGS
    for name in ("weights", "input", "output_dir"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    set_max_pixels(FLAGS.max_pixels)
    if os.path.exists(FLAGS.output_dir) and not os.path.isdir(FLAGS.output_dir):
        raise ValueError(f"{FLAGS.output_dir}: --output_dir exists and is not a folder")
    inputs = list_images(FLAGS.input)
    use_system_allocator()  # before the model's first tensors: TensorFlow reads it once
    model = load_generator(FLAGS.weights)
    written, failures = deblur_files(
        model,
        inputs,
        FLAGS.output_dir,
        FLAGS.tile,
        FLAGS.tile_overlap,
        FLAGS.compare,
        skip_existing=FLAGS.skip_existing,
    )
    skipped = len(inputs) - len(written) - len(failures)
    print(
        f"Deblurred {len(written)} of {len(inputs)} images into {FLAGS.output_dir}"
        + (f" ({skipped} skipped: their outputs exist)" if skipped else "")
    )
    if failures:
        print(f"error: {len(failures)} of {len(inputs)} failed (named above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    _define_flags()
    app.run(main)
