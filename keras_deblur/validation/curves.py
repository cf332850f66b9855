"""Learning curves: validation gain per blur class against training steps and CPU minutes.

Reads the `training_log.csv` that `keras.callbacks.CSVLogger` writes when
`keras_deblur.callbacks.TrainingClock` (columns `steps`, `cpu_minutes`) and
`ValidationScorer` (`val_score`, `val_gain_<class>`) run before it, merges runs into one table
and draws them.
"""

import csv
import math
import os

from keras_deblur.validation.manifest import CLASSES

CURVE_COLUMNS = ("val_score",) + tuple(f"val_gain_{name}" for name in CLASSES)
AXES = (("steps", "training steps"), ("cpu_minutes", "CPU minutes"))
MERGED_COLUMNS = ("run", "epoch", "steps", "cpu_minutes") + CURVE_COLUMNS


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan  # "NA", "nan", empty: an epoch without that score


def read_training_log(path):
    """Rows of one training log with the curve columns as floats (NaN where missing).

    Args:
        path: str. A `training_log.csv`, or a run folder holding one.

    Returns:
        list of dict with keys `MERGED_COLUMNS` minus "run".

    Raises:
        FileNotFoundError: no log there. ValueError: a log without `steps` and
            `cpu_minutes` columns (one line naming the file).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "training_log.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no training log")
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = [key for key, _ in AXES if key not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                f"{path}: no {missing[0]} column; train with "
                "keras_deblur.callbacks.TrainingClock before the CSVLogger"
            )
        return [
            {key: _number(row.get(key)) for key in MERGED_COLUMNS if key != "run"} for row in reader
        ]


def merge_runs(runs):
    """One table of every run's log rows, each tagged with its run name.

    Args:
        runs: list of str. Run folders (or log files); the name is the
            folder's base name.

    Returns:
        list of dict with keys `MERGED_COLUMNS`.
    """
    merged = []
    for run in runs:
        run = os.fspath(run).rstrip(os.sep)
        folder = os.path.dirname(run) if run.endswith(".csv") else run
        name = os.path.basename(folder) or run
        merged += [{"run": name, **row} for row in read_training_log(run)]
    return merged


SNAPSHOT_SCORES = "snapshot_scores.csv"


def score_snapshots(run_dir, pairs, every=1, progress=None):
    """Scores a run's per-epoch generators (`snapshots/epoch_NNN.keras`) on `pairs`.

    For runs trained without the fixed validation (or before it existed): the
    scores are written to `run_dir/snapshot_scores.csv` with the training log's
    `steps` and `cpu_minutes`, in the columns `read_training_log` reads, so the
    curves of such runs are drawn like any other. Epochs already in that file
    are not scored again.

    Args:
        run_dir: str. A run folder trained with `snapshots=True`.
        pairs: `ValidationPairs` (crops of one size).
        every: int. Score every n-th snapshot (and the last). Defaults to 1.
        progress: callable(str) or None. Told about each snapshot scored.

    Returns:
        str: the path of the scores file.
    """
    from keras_deblur.models.loading import load_generator
    from keras_deblur.validation.scoring import score_generator

    folder = os.path.join(run_dir, "snapshots")
    names = sorted(name for name in os.listdir(folder) if name.endswith(".keras"))
    if not names:
        raise FileNotFoundError(f"{folder}: no snapshots (train with snapshots=True)")
    log = {int(row["epoch"]) + 1: row for row in read_training_log(run_dir)}
    path = os.path.join(run_dir, SNAPSHOT_SCORES)
    # Keyed by snapshot number (1-based); rows hold Keras' 0-based epoch.
    done = {}
    if os.path.exists(path):
        done = {int(row["epoch"]) + 1: row for row in read_training_log(path)}
    for index, name in enumerate(names):
        epoch = int(name[len("epoch_") : -len(".keras")])
        if epoch in done or (index % every and index != len(names) - 1) or epoch not in log:
            continue
        generator = load_generator(os.path.join(folder, name))
        result = score_generator(generator, pairs, with_ssim=False)
        row = {key: log[epoch][key] for key in ("steps", "cpu_minutes")}
        row.update(epoch=epoch - 1, val_score=result["val_score"])  # 0-based, like Keras
        row.update({f"val_gain_{c}": s["gain"] for c, s in result["classes"].items()})
        done[epoch] = row
        if progress:
            progress(f"{run_dir} epoch {epoch}: val_score {result['val_score']:+.3f} dB")
    columns = [key for key in MERGED_COLUMNS if key != "run"]
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(done[epoch] for epoch in sorted(done))
    return path


def write_merged_csv(rows, path):
    """Writes merged rows (see `merge_runs`) as CSV."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, MERGED_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def plot_learning_curves(rows, path, title="validation gain", floor=None):
    """Draws each curve column against steps (top row) and CPU minutes (bottom row).

    One panel per column of `CURVE_COLUMNS` that has a finite value, one line
    per run; epochs without a score are skipped. Needs matplotlib (Agg).

    Args:
        rows: list of dict, see `merge_runs`.
        path: str. Output image, e.g. "docs/curves.png".
        title: str. Figure title.
        floor: float or None. Lowest dB shown: a score below it (one diverged
            epoch) is drawn on the floor as a down triangle, so that it does not
            squash the differences between runs. Defaults to None (all shown).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    columns = [c for c in CURVE_COLUMNS if any(math.isfinite(row[c]) for row in rows)]
    if not columns:
        raise ValueError(f"{path}: nothing to draw, no validation scores in the logs")
    runs = list(dict.fromkeys(row["run"] for row in rows))
    figure, axes = pyplot.subplots(
        len(AXES), len(columns), figsize=(3.2 * len(columns), 5.6), squeeze=False
    )
    for row_index, (x_key, x_label) in enumerate(AXES):
        for column_index, column in enumerate(columns):
            axis = axes[row_index][column_index]
            for run in runs:
                points = [
                    (row[x_key], row[column])
                    for row in rows
                    if row["run"] == run and math.isfinite(row[x_key] + row[column])
                ]
                if points:
                    xs, ys = zip(*points, strict=True)
                    shown = ys if floor is None else [max(y, floor) for y in ys]
                    (line,) = axis.plot(xs, shown, marker="o", markersize=3, label=run)
                    below = [(x, floor) for x, y in points if floor is not None and y < floor]
                    if below:
                        axis.plot(*zip(*below, strict=True), "v", color=line.get_color())
            axis.axhline(0.0, color="grey", linewidth=0.8)
            axis.set_xlabel(x_label)
            axis.set_title(column.replace("val_gain_", "gain: "))
            axis.grid(alpha=0.3)
        axes[row_index][0].set_ylabel("dB over the blurred input")
    axes[0][0].legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
