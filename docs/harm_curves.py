"""Harm curves: what campaign snapshots do to unblurred photos given synthetic depth of field.

    python docs/harm_curves.py --runs runs/campaign_s12,runs/campaign_s12b --photos PHOTOS \
        --output docs/model_card/study_harm.png

For every `--every`-th snapshot of each run (runs trained with --snapshots), each
photo of the selection split is downscaled to 512 pixels on its long side, given
seeded synthetic shallow depth of field (`depth_of_field.photo_depth_of_field`,
one receding plane and one subject per photo) and NO shake, and deblurred; the
output's PSNR against its input is what harm looks like in plain dB (45 dB is
the no-harm gate). Writes the table (CSV beside the PNG) and a figure of the
lowest and the mean PSNR against training steps, with the fixed validation's
val_score of the same epochs from each run's training_log.csv.
"""

import argparse
import csv
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_deblur import load_generator  # noqa: E402
from keras_deblur.data.depth_of_field import photo_depth_of_field  # noqa: E402
from keras_deblur.data.embedded import photo_paths  # noqa: E402
from keras_deblur.data.images import read_image, to_rgb_uint8  # noqa: E402
from keras_deblur.data.open_photos import resize_long_side  # noqa: E402
from keras_deblur.inference import deblur  # noqa: E402
from keras_deblur.metrics import psnr  # noqa: E402

GATE_DB = 45.0
# PSNR is capped here: an unchanged photo is infinitely close to itself.
CAP_DB = 80.0


def soft_photos(sources):
    """Each photo at 512 pixels, given a receding plane and a subject in focus (seeded)."""
    photos = []
    for index, path in enumerate(photo_paths(sources, "validation")):
        image = resize_long_side(to_rgb_uint8(read_image(path)), 512)
        for offset, kind in enumerate(("plane", "subject")):
            rng = np.random.default_rng([index, offset])
            photos.append(photo_depth_of_field(rng, image, 10.0, kind))
    return photos


def val_scores(run):
    """epoch -> val_score from a run's training log (epochs it validated on)."""
    with open(os.path.join(run, "training_log.csv")) as file:
        return {
            int(row["epoch"]): float(row["val_score"])
            for row in csv.DictReader(file)
            if row.get("val_score") not in (None, "", "nan")
        }


def score_run(run, photos, every):
    rows = []
    snapshots = sorted(glob.glob(os.path.join(run, "snapshots", "epoch_*.keras")))
    scores = val_scores(run)
    steps_per_epoch = _steps_per_epoch(run)
    for path in snapshots[every - 1 :: every]:
        # Snapshot N is saved after the N-th epoch, which the training log numbers N - 1.
        epoch = int(os.path.basename(path)[6:9]) - 1
        generator = load_generator(path)
        psnrs = [min(psnr(photo, deblur(generator, photo)), CAP_DB) for photo in photos]
        rows.append(
            {
                "run": os.path.basename(os.path.normpath(run)),
                "epoch": epoch,
                "steps": (epoch + 1) * steps_per_epoch,
                "min_psnr": min(psnrs),
                "mean_psnr": float(np.mean(psnrs)),
                "val_score": scores.get(epoch, float("nan")),
            }
        )
        print(rows[-1], flush=True)
    return rows


def _steps_per_epoch(run):
    with open(os.path.join(run, "config.json")) as file:
        return json.load(file)["steps_per_epoch"]


def plot(rows, output):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in dict.fromkeys(row["run"] for row in rows):
        mine = [row for row in rows if row["run"] == run]
        steps = [row["steps"] for row in mine]
        (line,) = axes[0].plot(steps, [row["min_psnr"] for row in mine], "o-", label=f"{run} min")
        axes[0].plot(steps, [row["mean_psnr"] for row in mine], "--", color=line.get_color())
        scored = [row for row in mine if not np.isnan(row["val_score"])]
        axes[1].plot(
            [r["steps"] for r in scored], [r["val_score"] for r in scored], "o-", label=run
        )
    axes[0].axhline(GATE_DB, color="grey", lw=1)
    axes[0].set(
        xlabel="steps",
        ylabel=f"PSNR vs input, dB (capped at {CAP_DB:.0f})",
        title="unblurred, synthetic depth of field: lowest (solid), mean (dashed)",
    )
    axes[1].set(xlabel="steps", ylabel="val_score, dB", title="fixed validation: val_score")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True)
    parser.add_argument("--photos", required=True, help="Selection-split photos, comma-separated.")
    parser.add_argument("--output", required=True)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    photos = soft_photos(args.photos.split(","))
    rows = [row for run in args.runs.split(",") for row in score_run(run, photos, args.every)]
    with open(os.path.splitext(args.output)[0] + ".csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.output)


if __name__ == "__main__":
    main()
