"""Make a paired blurred/sharp dataset from sharp photos (GoPro layout).

    python -m keras_deblur.blur --input sharp_photos/ --output dataset/ --blurs_per_image 2

Writes `<output>/blur/<name>.png` and `<output>/sharp/<name>.png` (with `_<k>`
suffixes when several blurs are made per photo, sub-folders kept), which
`keras_deblur.data.datasets.paired_dataset(<output>)` reads back.
`--save_kernels` also writes each kernel to `<output>/kernels/<name>.png` as a
16-bit PNG scaled so that its peak is white. Unreadable files are skipped with
a one-line warning and counted; the exit code is 1 if any file was skipped, 2
if nothing could be used.
"""

import os
import sys

from keras_deblur.cli import reports_errors
from keras_deblur.data.images import MAX_PIXELS, list_images, set_max_pixels
from keras_deblur.data.motion_blur import TRAINING_EXPOSURES, TRAINING_FRACTIONS
from keras_deblur.data.paired_folders import write_blurred_dataset

# Draws 0.1 * U(0, 1) per blur, the reference trajectory's own default.
UNIFORM_EXPOSURE = "uniform"


def _define_flags():
    # Defined only when run as a program, so importing this module next to
    # another CLI (tests, notebooks) cannot clash over flag names like --input.
    from absl import flags

    flags.DEFINE_string("input", None, "Sharp photos: a file, a folder (recursive) or a glob.")
    flags.DEFINE_string("output", None, "Dataset folder to write blur/ and sharp/ into.")
    flags.DEFINE_integer("blurs_per_image", 1, "Blurred versions of each photo.")
    flags.DEFINE_boolean("save_kernels", False, "Also write the kernels as 16-bit PNGs.")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same dataset.")
    flags.DEFINE_float("max_length", 60.0, "Camera path length in pixels.")
    flags.DEFINE_list(
        "exposure",
        [str(value) for value in TRAINING_EXPOSURES],
        f"Exposure ('anxiety') levels, one picked per blur; '{UNIFORM_EXPOSURE}' draws "
        "0.1*U(0,1) like the reference trajectory. Default: the reference dataset script's mix.",
    )
    flags.DEFINE_list(
        "fraction",
        [str(value) for value in TRAINING_FRACTIONS],
        "Exposure fractions in (0, 1], one picked per blur.",
    )
    flags.DEFINE_float("gamma", 1.0, "Blur in linear light with this gamma (2.2 for sRGB).")
    flags.DEFINE_float("noise_std", 0.0, "Gaussian noise std as a fraction of the full range.")
    flags.DEFINE_integer(
        "max_pixels", MAX_PIXELS, "Skip photos whose header claims more pixels than this."
    )
    flags.mark_flags_as_required(["input", "output"])


def parse_levels(values, name, allow_uniform=False):
    """Flag strings -> floats (`'uniform'` -> None where allowed)."""
    levels = []
    for value in values:
        if allow_uniform and value == UNIFORM_EXPOSURE:
            levels.append(None)
            continue
        try:
            levels.append(float(value))
        except ValueError:
            raise ValueError(f"--{name} takes numbers. Received: {value!r}") from None
    if not levels:
        raise ValueError(f"--{name} needs at least one value")
    return levels


@reports_errors(OSError, ValueError)
def blur_photos(input_spec, output, **options):
    """Runs the command: returns its exit code, reporting in one line per problem.

    Args:
        input_spec: str. File, folder or glob of sharp photos.
        output: str. Dataset folder.
        **options: see `paired_folders.write_blurred_dataset`.
    """
    inputs = list_images(input_spec)
    # An output folder inside the input folder must not feed back a previous run.
    inside = os.path.join(os.path.abspath(output), "")
    inputs = [path for path in inputs if not os.path.abspath(path).startswith(inside)]
    if not inputs:
        raise FileNotFoundError(f"{input_spec}: no image files outside {output}")
    written, problems = write_blurred_dataset(inputs, output, **options)
    print(f"Wrote {written} blurred/sharp pairs into {output}")
    if problems:
        print(f"error: skipped {len(problems)} unreadable files (named above)", file=sys.stderr)
        return 1
    return 0


def main(argv):
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    FLAGS = flags.FLAGS
    try:
        exposure = parse_levels(FLAGS.exposure, "exposure", allow_uniform=True)
        fraction = parse_levels(FLAGS.fraction, "fraction")
        set_max_pixels(FLAGS.max_pixels)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    return blur_photos(
        FLAGS.input,
        FLAGS.output,
        blurs_per_image=FLAGS.blurs_per_image,
        save_kernels=FLAGS.save_kernels,
        seed=FLAGS.seed,
        max_length=FLAGS.max_length,
        exposure=exposure,
        fraction=fraction,
        gamma=FLAGS.gamma,
        noise_std=FLAGS.noise_std,
    )


if __name__ == "__main__":
    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    from absl import app

    _define_flags()
    app.run(main)
