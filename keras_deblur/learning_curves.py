"""Draw learning curves: validation gain per blur class against steps and CPU minutes.

    python -m keras_deblur.learning_curves --runs runs/a,runs/b --output docs/curves.png

Reads each run's `training_log.csv` (its `steps` and `cpu_minutes` written by
`keras_deblur.callbacks.TrainingClock`, its scores by `ValidationScorer`), writes the
merged table beside the image (`--csv`, default: the image's name with .csv)
and the PNG.
"""

import os

from absl import app, flags

from keras_deblur.cli import reports_errors
from keras_deblur.validation.curves import merge_runs, plot_learning_curves, write_merged_csv


def _define_flags():
    """Defines the flags; only when run as a program (no clash with other CLI modules)."""
    flags.DEFINE_list("runs", None, "Run folders (or training_log.csv files), comma-separated.")
    flags.DEFINE_string("output", None, "Image to write, e.g. docs/curves.png.")
    flags.DEFINE_string("csv", None, "Merged CSV to write (default: --output with .csv).")
    flags.DEFINE_string("title", "validation gain", "Figure title.")
    flags.DEFINE_float(
        "floor", None, "Lowest dB drawn; scores below it are marked with a down triangle."
    )
    flags.DEFINE_boolean(
        "score_snapshots",
        False,
        "First score each run's snapshots/epoch_NNN.keras on the fixed validation set "
        "(runs trained with --snapshots) and draw those scores.",
    )
    flags.DEFINE_integer("every", 1, "With --score_snapshots: score every n-th snapshot.")
    flags.DEFINE_list(
        "photos", None, "With --score_snapshots: folders holding the validation photos."
    )
    flags.mark_flags_as_required(["runs", "output"])


def _score_snapshots(runs, every, photos):
    from keras_deblur.validation import DEFAULT_PHOTO_SOURCES, load_manifest, load_pairs
    from keras_deblur.validation.curves import score_snapshots

    pairs = load_pairs(load_manifest(), photos or DEFAULT_PHOTO_SOURCES, whole=False)
    return [score_snapshots(run, pairs, every, progress=print) for run in runs]


@reports_errors(OSError, ValueError)
def main(argv):
    del argv
    FLAGS = flags.FLAGS
    csv_path = FLAGS.csv or os.path.splitext(FLAGS.output)[0] + ".csv"
    runs = FLAGS.runs
    if FLAGS.score_snapshots:
        runs = _score_snapshots(runs, FLAGS.every, FLAGS.photos)
    rows = merge_runs(runs)
    write_merged_csv(rows, csv_path)
    plot_learning_curves(rows, FLAGS.output, FLAGS.title, FLAGS.floor)
    print(f"Wrote {FLAGS.output} and {csv_path} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
