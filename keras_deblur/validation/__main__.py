"""Score a generator on the fixed validation set, or rebuild the set.

    python -m keras_deblur.validation --output_dir runs/validation/mobile
    python -m keras_deblur.validation --weights runs/a/best_generator.keras \\
        --baseline_weights mobile --output_dir runs/validation/a
    python -m keras_deblur.validation build      # after photos were added to the val split

Scoring writes `summary.json` (per-class summaries of the crops and the whole
photos, `val_score`, paired differences with --baseline_weights) and
`samples.csv` (one row per sample) under --output_dir, and prints the table.
`--weights identity` scores a generator that returns its input (gain 0).
`build` rewrites the manifest (default: the one in the package) from the
held-out photos; commit it with its `_kernels.npz`.
"""

import csv
import json
import logging
import os

from absl import app, flags

from keras_deblur.cli import reports_errors
from keras_deblur.metrics import json_safe
from keras_deblur.pretrained import DEFAULT_PRESET, PRESETS
from keras_deblur.validation.manifest import (
    DEFAULT_MANIFEST,
    build_validation_manifest,
    defocus_photo_names,
    load_manifest,
    save_manifest,
)
from keras_deblur.validation.pairs import DEFAULT_PHOTO_SOURCES, materialise
from keras_deblur.validation.scoring import (
    SAMPLE_COLUMNS,
    format_table,
    paired_difference,
    score_generator,
)

IDENTITY = "identity"


def _define_flags():
    """Defines the flags; only when run as a program (no clash with other CLI modules)."""
    flags.DEFINE_string(
        "weights",
        DEFAULT_PRESET,
        f"Generator: .keras file, a preset ({', '.join(PRESETS)}) or '{IDENTITY}'.",
    )
    flags.DEFINE_string(
        "baseline_weights", None, "Also score this generator and report the paired difference."
    )
    flags.DEFINE_string("manifest", DEFAULT_MANIFEST, "Validation manifest (.json).")
    flags.DEFINE_list(
        "photos",
        list(DEFAULT_PHOTO_SOURCES),
        "Held-out photos: folders, files, globs or 'embedded' (its validation split).",
    )
    flags.DEFINE_string("cache_dir", "data/validation", "Folder caching the pairs as PNGs.")
    flags.DEFINE_string("output_dir", None, "Folder for summary.json and samples.csv.")
    flags.DEFINE_boolean("whole", True, "Also score the whole photos (slower).")
    flags.DEFINE_boolean("ssim", True, "Also score SSIM.")
    flags.DEFINE_integer("batch_size", 16, "Crops per predict_on_batch call.")
    # build
    flags.DEFINE_list(
        "defocus",
        None,
        "build: names of the photos with natural defocus (default: those that "
        "keras_deblur.data.open_photos.DEFOCUS lists).",
    )
    flags.DEFINE_integer("seed", 0, "build: seed of the windows and kernels.")
    flags.DEFINE_integer("crops_per_class", 64, "build: crops per blur class.")
    flags.DEFINE_integer("crop_size", 256, "build: side of the crops (a multiple of 4).")


def _generator(name):
    if name == IDENTITY:
        import keras

        inputs = keras.Input((None, None, 3))
        return keras.Model(inputs, keras.layers.Identity()(inputs), name=IDENTITY)
    from keras_deblur.models import load_generator

    return load_generator(name)


def score(weights, pairs, batch_size, with_ssim, baseline=None):
    """Scores `weights` (and `baseline`) on the crops and whole photos of `pairs`."""
    parts = {"crops": pairs.select(False), "whole": pairs.select(True)}
    summary, rows, tables = {"weights": weights}, [], []
    generator = _generator(weights)
    base = _generator(baseline) if baseline else None
    for part, part_pairs in parts.items():
        if not len(part_pairs):
            continue
        result = score_generator(generator, part_pairs, batch_size, with_ssim)
        difference = None
        if base is not None:
            difference = paired_difference(
                result, score_generator(base, part_pairs, batch_size, with_ssim)
            )
        summary[part] = {key: result[key] for key in ("classes", "val_score", "seconds", "n")} | (
            {"difference_to_baseline": difference} if difference else {}
        )
        rows += result["samples"]
        tables.append(format_table(result, f"{weights}, {part}", difference))
    summary["val_score"] = summary["crops"]["val_score"] if "crops" in summary else None
    return summary, rows, "\n\n".join(tables)


def _write(output_dir, summary, rows):
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "summary.json"), "w") as file:
        json.dump(json_safe(summary), file, indent=2)
    with open(os.path.join(output_dir, "samples.csv"), "w", newline="") as file:
        writer = csv.DictWriter(file, SAMPLE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


@reports_errors(OSError, ValueError)
def main(argv):
    FLAGS = flags.FLAGS
    mode = argv[1] if len(argv) > 1 else "score"
    if mode not in ("score", "build") or len(argv) > 2:
        raise app.UsageError(f"unknown arguments {argv[1:]}; the mode is 'score' or 'build'")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if mode == "build":
        from keras_deblur.data.embedded import photo_paths

        photos = photo_paths(FLAGS.photos, "validation")
        manifest = build_validation_manifest(
            photos,
            defocus_photo_names(photos) if FLAGS.defocus is None else FLAGS.defocus,
            FLAGS.seed,
            FLAGS.crops_per_class,
            FLAGS.crop_size,
        )
        save_manifest(manifest, FLAGS.manifest)
        print(
            f"Wrote {FLAGS.manifest}: {len(manifest['photos'])} photos, "
            f"{len(manifest['samples'])} samples"
        )
        return 0
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    pairs = materialise(load_manifest(FLAGS.manifest), FLAGS.cache_dir, FLAGS.photos)
    if not FLAGS.whole:
        pairs = pairs.select(False)
    summary, rows, table = score(
        FLAGS.weights, pairs, FLAGS.batch_size, FLAGS.ssim, FLAGS.baseline_weights
    )
    _write(FLAGS.output_dir, summary, rows)
    print(table)
    print(f"Results in {FLAGS.output_dir}")
    return 0


if __name__ == "__main__":
    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    _define_flags()
    app.run(main)
