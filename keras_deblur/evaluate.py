"""Evaluate a generator: PSNR/SSIM against references, detection, visual report.

    python -m keras_deblur.evaluate --weights G.keras --paired_dir GOPRO_Large/test \\
        --output_dir eval/
    python -m keras_deblur.evaluate --weights G.keras --sharp_dir photos/ --seed 0 \\
        --output_dir eval/ --detection
    python -m keras_deblur.evaluate --weights G.keras --sharp_dir embedded --output_dir eval/

Two sources: a paired folder (GoPro `<scene>/{blur,sharp}/` or flat
`{blur,sharp}/`, matched by `keras_deblur.data.paired_folders.find_image_pairs`), or
sharp photos blurred with seeded random-trajectory kernels (`--sharp_dir
embedded` uses the validation photos shipped with scikit-image). Every image is
scored whole, in RGB, with `keras_deblur.metrics` (scikit-image's definitions).

Written under --output_dir: `per_image.csv` (one row per image; `seconds` is the
generator's time on it, excluding the one-off graph tracing for each new image
size), `summary.json` (means, and the settings), `deblurred/` (the restored
images, PNG), `grids/` (blurred | deblurred | sharp as JPEG, captioned with PSNR
and SSIM) and `index.html`. The table printed at the end holds the reference
rows: the blurred input itself, unsharp masking, and, for synthetic blur where
the kernel is known, Wiener deconvolution with the true kernel.
"""

import csv
import json
import logging
import math
import os
import sys
import time

import numpy as np
from absl import app, flags
from tqdm import tqdm

from keras_deblur import baselines, detection, metrics, report
from keras_deblur.blur import UNIFORM_EXPOSURE, parse_levels
from keras_deblur.cli import reports_errors
from keras_deblur.data.depth_of_field import photo_depth_of_field
from keras_deblur.data.embedded import EMBEDDED, photo_paths
from keras_deblur.data.images import (
    MAX_PIXELS,
    ImageReadError,
    read_image,
    set_max_pixels,
    to_rgb_uint8,
    write_image,
)
from keras_deblur.data.motion_blur import TRAINING_EXPOSURES, TRAINING_FRACTIONS, synthesize_blur
from keras_deblur.data.paired_folders import find_image_pairs, probe_image
from keras_deblur.inference import MIN_IMAGE_SIDE, deblur
from keras_deblur.models import load_generator
from keras_deblur.pretrained import DEFAULT_PRESET, PRESETS
from keras_deblur.process_memory import release_freed_memory, use_system_allocator

logger = logging.getLogger(__name__)

# Methods in table order; "wiener" only exists for synthetic blur.
METHOD_LABELS = {
    "blurred": "blurred input",
    "unsharp": "unsharp masking (OpenCV)",
    "wiener": "Wiener, true kernel",
    "deblurred": "DeblurGAN",
}


class EvaluationInputError(ValueError):
    """Unusable evaluation data; `problems` holds one line per bad file or pair."""

    def __init__(self, problems):
        self.problems = list(problems)
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(self.problems[0] + more)


def _sample_name(path, root):
    """A flat, unique file stem from a path relative to the dataset root."""
    relative = os.path.relpath(path, root) if root else os.path.basename(path)
    parts = [p for p in os.path.splitext(relative)[0].split(os.sep) if p not in ("blur", "sharp")]
    return "__".join(parts) or "image"


def _skip(skipped, problem):
    """Leaves a file out: one warning line now, and listed in the summary."""
    logger.warning("Skipping %s", problem)
    skipped.append(problem)


def _probe_usable(path):
    """`probe_image`, refusing images too small for the generator."""
    height, width = probe_image(path)
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ImageReadError(
            f"{path}: {width}x{height} is too small to deblur "
            f"(at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels)"
        )
    return height, width


def _check_pairs(pairs):
    """Header-only check of every pair: readable, and both members the same size.

    Returns:
        `(usable pairs, one-line problems)`.
    """
    usable, problems = [], []
    for blurred_path, sharp_path in pairs:
        try:
            blurred_size, sharp_size = _probe_usable(blurred_path), _probe_usable(sharp_path)
        except ImageReadError as error:
            problems.append(str(error))
            continue
        if blurred_size != sharp_size:
            problems.append(_size_mismatch(blurred_path, blurred_size, sharp_path, sharp_size))
            continue
        usable.append((blurred_path, sharp_path))
    return usable, problems


def _size_mismatch(blurred_path, blurred_size, sharp_path, sharp_size):
    return (
        f"{blurred_path}: size {blurred_size[1]}x{blurred_size[0]} differs from its sharp "
        f"partner {sharp_path} ({sharp_size[1]}x{sharp_size[0]})"
    )


def _check_sharp_files(paths):
    """Header-only check of every photo; returns `(usable paths, one-line problems)`."""
    usable, problems = [], []
    for path in paths:
        try:
            _probe_usable(path)
            usable.append(path)
        except ImageReadError as error:
            problems.append(str(error))
    return usable, problems


def _paired_samples(pairs, root, skipped):
    for blurred_path, sharp_path in pairs:
        try:
            blurred = to_rgb_uint8(read_image(blurred_path))
            sharp = to_rgb_uint8(read_image(sharp_path))
        except ImageReadError as error:  # a header that read fine over broken data
            _skip(skipped, str(error))
            continue
        if blurred.shape != sharp.shape:
            _skip(skipped, _size_mismatch(blurred_path, blurred.shape, sharp_path, sharp.shape))
            continue
        yield {
            "name": _sample_name(sharp_path, root),
            "blurred_path": blurred_path,
            "sharp_path": sharp_path,
            "blurred": blurred,
            "sharp": sharp,
            "kernel": None,
        }


def _synthetic_samples(paths, root, seed, blur_options, skipped, unblurred, depth_of_field):
    for index, path in enumerate(paths):
        try:
            sharp = to_rgb_uint8(read_image(path))
        except ImageReadError as error:
            _skip(skipped, str(error))
            continue
        # One generator per image: image i gets the same blur whatever --limit is.
        rng = np.random.default_rng([seed, index])
        if depth_of_field:
            # Its own stream, so the shake drawn below is the one the photo gets without it.
            sharp = photo_depth_of_field(np.random.default_rng([seed, index, 1]), sharp)
        if unblurred:
            blurred, kernel = sharp, None
        else:
            blurred, kernel = synthesize_blur(sharp, rng, **blur_options)
        yield {
            "name": _sample_name(path, root),
            "blurred_path": "",
            "sharp_path": path,
            "blurred": blurred,
            "sharp": sharp,
            "kernel": kernel,
        }


def _resolve_source(paired_dir, sharp, limit):
    """Returns `(kind, usable items, root, problems)` after checking every file's header."""
    if (paired_dir is None) == (sharp is None):
        raise ValueError("give exactly one of paired_dir (blur/sharp pairs) or sharp (photos)")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1. Received: limit={limit}")
    if paired_dir is not None:
        pairs, problems = _check_pairs(find_image_pairs(paired_dir)[:limit])
        if not pairs:
            raise EvaluationInputError(problems)
        return "paired", pairs, os.fspath(paired_dir), problems
    sources = [sharp] if isinstance(sharp, str | os.PathLike) else list(sharp)
    paths = photo_paths(sources, "validation")
    if not paths:
        raise FileNotFoundError("sharp: no image files given")
    paths, problems = _check_sharp_files(paths[:limit])
    if not paths:
        raise EvaluationInputError(problems)
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    return "synthetic", paths, root, problems


def _score(row, method, sharp, image):
    row[f"{method}_psnr"] = metrics.psnr(sharp, image)
    row[f"{method}_ssim"] = metrics.ssim(sharp, image)


def summarize(rows, detection_counts=None):
    """Means over images of every metric column, per method, and the worst image beside them.

    Args:
        rows: list of per-image dicts as written to the CSV.
        detection_counts: dict candidate -> (tp, fp, fn) summed over images, or None.

    Returns:
        dict with `num_images`, `methods` (method -> {psnr, ssim, psnr_gain,
        ssim_gain, worst_gain, worst_gain_image, min_psnr, min_psnr_image}),
        `seconds_per_image` (mean and median of the generator's time) and, if
        given, `detection` (candidate -> micro-averaged scores). PSNR means skip
        infinite values (identical images). `worst_gain` is the lowest gain of
        one image over its own blurred input, in plain dB (NaN for unblurred
        inputs, whose PSNR is infinite); `min_psnr` the lowest PSNR of one image
        (for unblurred inputs: the output against the photo itself).
    """
    methods = {}
    for method in METHOD_LABELS:
        if not rows or f"{method}_psnr" not in rows[0]:
            continue
        psnrs = [r[f"{method}_psnr"] for r in rows]
        gains = [p - r["blurred_psnr"] for p, r in zip(psnrs, rows, strict=True)]
        methods[method] = {
            "label": METHOD_LABELS[method],
            "psnr": metrics.finite_mean(psnrs),
            "ssim": metrics.finite_mean([r[f"{method}_ssim"] for r in rows]),
            **_lowest("worst_gain", gains, rows),
            **_lowest("min_psnr", psnrs, rows),
        }
    blurred = methods.get("blurred")
    for values in methods.values():
        values["psnr_gain"] = values["psnr"] - blurred["psnr"]
        values["ssim_gain"] = values["ssim"] - blurred["ssim"]
    seconds = [r["seconds"] for r in rows]
    summary = {
        "num_images": len(rows),
        "methods": methods,
        "seconds_per_image": {
            "mean": float(np.mean(seconds)) if seconds else float("nan"),
            "median": float(np.median(seconds)) if seconds else float("nan"),
        },
    }
    if detection_counts is not None:
        summary["detection"] = {
            name: detection.scores_from_counts(*counts) for name, counts in detection_counts.items()
        }
    return summary


def _lowest(key, values, rows):
    """`{key: lowest finite value, key_image: its row's name}` (NaN and "" when none)."""
    finite = [(v, r["name"]) for v, r in zip(values, rows, strict=True) if math.isfinite(v)]
    value, name = min(finite) if finite else (float("nan"), "")
    return {key: value, f"{key}_image": name}


def format_table(summary):
    """The summary as a plain-text table (one row per method), for printing.

    Beside each mean: the worst image's own gain over its blurred input, or,
    where the inputs are unblurred (gains undefined), the lowest PSNR of an
    output against the photo itself, with that image's name.
    """
    methods = summary["methods"]
    unblurred = all(math.isnan(v["worst_gain"]) for v in methods.values())
    worst_key, worst_label = ("min_psnr", "min PSNR") if unblurred else ("worst_gain", "worst")
    lines = [
        f"{'method':<28} {'PSNR dB':>8} {'SSIM':>7} {'dPSNR':>7} {'dSSIM':>7} "
        f"{worst_label:>8}  (image)"
    ]
    for values in methods.values():
        lines.append(
            f"{values['label']:<28} {values['psnr']:>8.2f} {values['ssim']:>7.4f} "
            f"{values['psnr_gain']:>+7.2f} {values['ssim_gain']:>+7.4f} "
            f"{values[worst_key]:>+8.2f}  ({values[worst_key + '_image']})"
        )
    seconds = summary["seconds_per_image"]
    lines.append(
        f"{summary['num_images']} images; generator {seconds['mean']:.3f} s/image "
        f"(median {seconds['median']:.3f})"
    )
    if "detection" in summary:
        lines.append(f"{'detection vs sharp (IoU 0.5)':<28} {'prec':>8} {'recall':>7} {'F1':>7}")
        for name, scores in summary["detection"].items():
            lines.append(
                f"{name:<28} {scores['precision']:>8.3f} {scores['recall']:>7.3f} "
                f"{scores['f1']:>7.3f}"
            )
    return "\n".join(lines)


def _write_csv(path, rows):
    columns = list(rows[0]) if rows else ["name"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            )


def evaluate(
    model,
    output_dir,
    paired_dir=None,
    sharp=None,
    seed=0,
    limit=None,
    tile_size=None,
    detector=None,
    reference_methods=True,
    visual_report=True,
    blur_options=None,
    progress=True,
    unblurred=False,
    depth_of_field=False,
):
    """Scores a generator on a paired folder or on synthetically blurred photos.

    Args:
        model: `keras.Model` generator, or a path to a `.keras`/`.weights.h5`/`.tflite` file.
        output_dir: str. Folder for `per_image.csv`, `summary.json`, `deblurred/`,
            `grids/` and `index.html` (created).
        paired_dir: str or None. GoPro-layout or flat `blur/`+`sharp/` folder.
        sharp: str, list of str or None. Sharp photos to blur with seeded
            random-trajectory kernels: a folder, glob, file, `"embedded"` for
            scikit-image's validation photos, or a list of any of these.
            Exactly one of `paired_dir` and `sharp` must be given.
        seed: int. Seed of the synthetic blur (image i uses `default_rng([seed, i])`).
            Defaults to 0.
        limit: int or None. Evaluate only the first `limit` images (sorted order).
        tile_size: int or None. Passed to `keras_deblur.inference.deblur`.
        detector: callable `uint8 RGB -> boxes (N, 4|5)`, or None for no
            detection evaluation (see `keras_deblur.detection`).
        reference_methods: bool. Also score unsharp masking and, for synthetic
            blur, Wiener deconvolution with the true kernel. Defaults to True.
        visual_report: bool. Write grids and `index.html`. Defaults to True.
        blur_options: dict or None. Options of `motion_blur.synthesize_blur`
            (`max_length`, `exposure`, `fraction`, `gamma`, `noise_std`, ...).
        progress: bool. Show a progress bar. Defaults to True.
        unblurred: bool. With `sharp`: give the generator each photo as it is,
            with no blur, and score its output against the photo itself (a
            deblurrer must leave a sharp or softly focused photo alone; the
            inputs' PSNR is infinite, so the table shows each method's lowest
            PSNR instead of gains). Defaults to False.
        depth_of_field: bool. With `sharp`: first give each photo seeded
            synthetic shallow depth of field (`depth_of_field.photo_depth_of_field`),
            which becomes the reference: the generator must remove the shake
            and keep the defocus. Defaults to False.

    Returns:
        The summary dict also saved as `summary.json` (see `summarize`), plus
        `weights` (the path, if one was given), `source`, `seed`, `blur_options`,
        `tile_size` and `files` (the paths written).

    Raises:
        EvaluationInputError: (a ValueError) when no image or pair is usable;
            the message is one line, `problems` lists every bad file. Files
            that are unreadable, over the pixel budget, or pairs whose members
            differ in size are otherwise skipped with a warning and listed in
            the summary's `skipped`.
        FileNotFoundError: no images found.
    """
    kind, items, root, problems = _resolve_source(paired_dir, sharp, limit)
    skipped = []
    for problem in problems:
        _skip(skipped, problem)
    weights = None
    if isinstance(model, str | os.PathLike):
        weights = os.fspath(model)
        use_system_allocator()  # before the model's first tensors: TensorFlow reads it once
        model = load_generator(weights)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    blur_options = dict(blur_options or {})
    if kind == "paired":
        samples = _paired_samples(items, root, skipped)
    else:
        samples = _synthetic_samples(
            items, root, seed, blur_options, skipped, unblurred, depth_of_field
        )

    rows, html_samples, used_names, traced_shapes = [], [], set(), set()
    detection_counts = {"blurred": [0, 0, 0], "deblurred": [0, 0, 0]} if detector else None
    bar = tqdm(samples, total=len(items), disable=not progress, unit="image", desc="Evaluating")
    for sample in bar:
        blurred, sharp_image = sample["blurred"], sample["sharp"]
        if blurred.shape not in traced_shapes:
            # Keras traces a graph per input size (~1 s); time the steady state instead.
            deblur(model, blurred, tile_size=tile_size)
            traced_shapes.add(blurred.shape)
        start = time.perf_counter()
        restored = deblur(model, blurred, tile_size=tile_size)
        seconds = time.perf_counter() - start

        name = sample["name"]
        if name in used_names:  # e.g. a.png and a.jpg side by side
            name = f"{name}__{len(rows)}"
        used_names.add(name)
        row = {
            "name": name,
            "blurred_path": sample["blurred_path"],
            "sharp_path": sample["sharp_path"],
            "height": sharp_image.shape[0],
            "width": sharp_image.shape[1],
        }
        _score(row, "blurred", sharp_image, blurred)
        _score(row, "deblurred", sharp_image, restored)
        row["psnr_gain"] = row["deblurred_psnr"] - row["blurred_psnr"]
        row["ssim_gain"] = row["deblurred_ssim"] - row["blurred_ssim"]
        row["seconds"] = seconds
        if reference_methods:
            _score(row, "unsharp", sharp_image, baselines.unsharp_mask(blurred))
            if sample["kernel"] is not None:
                wiener = baselines.wiener_deconvolve(
                    blurred, sample["kernel"], gamma=blur_options.get("gamma", 1.0)
                )
                _score(row, "wiener", sharp_image, wiener)
        if sample["kernel"] is not None:
            row["kernel_size"] = sample["kernel"].shape[0]
        if detector:
            found = detection.compare_detections(
                detector, sharp_image, {"blurred": blurred, "deblurred": restored}
            )
            row["reference_boxes"] = found["reference_boxes"]
            for name in ("blurred", "deblurred"):
                scores = found[name]
                for key in ("precision", "recall", "f1"):
                    row[f"{name}_detection_{key}"] = scores[key]
                counts = detection_counts[name]
                counts[0] += scores["true_positives"]
                counts[1] += scores["false_positives"]
                counts[2] += scores["false_negatives"]

        write_image(os.path.join(output_dir, "deblurred", name + ".png"), restored)
        if visual_report:
            # JPEG: a 3-panel 1280x720 grid is ~5x smaller than PNG and 8x faster to write.
            grid_path = os.path.join(output_dir, "grids", name + ".jpg")
            grid = report.comparison_grid(
                [
                    (
                        f"blurred  PSNR {row['blurred_psnr']:.2f} dB  "
                        f"SSIM {row['blurred_ssim']:.3f}",
                        blurred,
                    ),
                    (
                        f"deblurred  PSNR {row['deblurred_psnr']:.2f} dB  "
                        f"SSIM {row['deblurred_ssim']:.3f}",
                        restored,
                    ),
                    ("sharp", sharp_image),
                ]
            )
            write_image(grid_path, grid)
            html_samples.append({**row, "grid": grid_path})
        rows.append(row)
        bar.set_postfix(psnr=f"{row['deblurred_psnr']:.2f}", gain=f"{row['psnr_gain']:+.2f}")
        release_freed_memory()  # photos of many sizes: give each one's buffers back

    if not rows:
        raise EvaluationInputError(skipped)
    summary = summarize(rows, detection_counts)
    summary["skipped"] = list(skipped)
    csv_path = os.path.join(output_dir, "per_image.csv")
    json_path = os.path.join(output_dir, "summary.json")
    _write_csv(csv_path, rows)
    summary.update(
        {
            "weights": weights,
            "source": {"kind": kind, "root": root},
            "seed": seed if kind == "synthetic" else None,
            "blur_options": blur_options if kind == "synthetic" else None,
            "unblurred": unblurred,
            "depth_of_field": depth_of_field,
            "tile_size": tile_size,
            "files": {"csv": csv_path, "json": json_path},
        }
    )
    if visual_report:
        html_path = os.path.join(output_dir, "index.html")
        columns = [c for c in rows[0] if c.endswith(("_psnr", "_ssim", "_gain", "seconds"))]
        means = {
            f"{values['label']} {metric}": values[metric]
            for values in summary["methods"].values()
            for metric in ("psnr", "ssim")
        }
        report.write_html_report(html_path, html_samples, columns, summary=means)
        summary["files"]["html"] = html_path
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(metrics.json_safe(summary), handle, indent=2)
    logger.info("Wrote %s and %s", csv_path, json_path)
    return summary


def _define_flags():
    """Defines the flags; only when run as a program, so importing this module
    next to another CLI module cannot clash on flag names."""
    flags.DEFINE_string(
        "weights",
        DEFAULT_PRESET,
        "Generator: .keras, .weights.h5 or .tflite file (any python -m export.tflite variant, "
        f"run on every CPU), or a pretrained preset ({', '.join(PRESETS)}).",
    )
    flags.DEFINE_string(
        "paired_dir", None, "Paired folder: <scene>/{blur,sharp}/ (GoPro) or {blur,sharp}/."
    )
    flags.DEFINE_list(
        "sharp_dir",
        None,
        "Sharp photos (folders, globs or files, comma-separated) blurred with seeded synthetic "
        f"kernels; '{EMBEDDED}' uses the validation photos shipped with scikit-image.",
    )
    flags.DEFINE_integer("seed", 0, "Seed of the synthetic blur (with --sharp_dir).")
    flags.DEFINE_list(
        "exposure",
        [str(value) for value in TRAINING_EXPOSURES],
        f"Synthetic blur exposure ('anxiety') levels, one picked per photo; '{UNIFORM_EXPOSURE}' "
        "draws 0.1*U(0,1) like the reference trajectory (short shakes). Default: the reference "
        "dataset script's mix.",
    )
    flags.DEFINE_list(
        "fraction",
        [str(value) for value in TRAINING_FRACTIONS],
        "Exposure fractions in (0, 1] the kernels integrate, one picked per photo.",
    )
    flags.DEFINE_string("output_dir", None, "Folder for the CSV, JSON and report.")
    flags.DEFINE_boolean(
        "detection", False, "Also run detection-based evaluation (default: OpenCV HOG + Haar)."
    )
    flags.DEFINE_string(
        "yolo_onnx", None, "With --detection: local YOLO .onnx file to use instead of OpenCV's."
    )
    flags.DEFINE_integer("limit", None, "Evaluate only the first N images.")
    flags.DEFINE_integer(
        "max_pixels", MAX_PIXELS, "Skip images whose header claims more pixels than this."
    )
    flags.DEFINE_integer(
        "tile", None, "Tile side in pixels for deblurring; 0 never tiles (default: only > 4 MP)."
    )
    flags.DEFINE_boolean(
        "unblurred",
        False,
        "With --sharp_dir: give each photo unblurred and score the output against the photo "
        "itself (the table shows the lowest PSNR: a deblurrer must leave sharp photos alone).",
    )
    flags.DEFINE_boolean(
        "depth_of_field",
        False,
        "With --sharp_dir: give each photo seeded synthetic shallow depth of field first; the "
        "defocused photo is the reference (the model must keep the defocus).",
    )
    flags.DEFINE_boolean("report", True, "Write grids/ and index.html.")
    flags.DEFINE_boolean(
        "references", True, "Also score unsharp masking and Wiener with the true kernel."
    )


# EvaluationInputError is a ValueError: one "error:" line per problem.
@reports_errors(OSError, ValueError, RuntimeError)
def main(argv):
    del argv
    FLAGS = flags.FLAGS
    for name in ("weights", "output_dir"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")
    try:
        blur_options = {
            "exposure": parse_levels(FLAGS.exposure, "exposure", allow_uniform=True),
            "fraction": parse_levels(FLAGS.fraction, "fraction"),
        }
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    if bool(FLAGS.paired_dir) == bool(FLAGS.sharp_dir):
        raise app.UsageError("give exactly one of --paired_dir and --sharp_dir")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    set_max_pixels(FLAGS.max_pixels)
    detector = None
    if FLAGS.detection:
        detector = (
            detection.yolo_onnx_detector(FLAGS.yolo_onnx)
            if FLAGS.yolo_onnx
            else detection.default_detector()
        )
    summary = evaluate(
        FLAGS.weights,
        FLAGS.output_dir,
        paired_dir=FLAGS.paired_dir,
        sharp=FLAGS.sharp_dir,
        seed=FLAGS.seed,
        limit=FLAGS.limit,
        tile_size=FLAGS.tile,
        detector=detector,
        reference_methods=FLAGS.references,
        visual_report=FLAGS.report,
        blur_options=blur_options,
        unblurred=FLAGS.unblurred,
        depth_of_field=FLAGS.depth_of_field,
    )
    print(format_table(summary))
    print(f"Results in {FLAGS.output_dir}")
    if summary["skipped"]:
        count = len(summary["skipped"])
        print(f"error: skipped {count} unusable files (named above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    _define_flags()
    app.run(main)
