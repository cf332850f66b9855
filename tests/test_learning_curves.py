"""Learning curves: training logs with validation scores -> merged CSV and a PNG."""

import csv
import subprocess
import sys

import pytest

from keras_deblur.validation import CLASSES
from keras_deblur.validation.curves import merge_runs, read_training_log

COLUMNS = ["epoch", "generator_loss", "steps", "cpu_minutes", "val_score"] + [
    f"val_gain_{name}" for name in CLASSES
]


def _fake_run(folder, slope, epochs=4):
    folder.mkdir(parents=True)
    with open(folder / "training_log.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for epoch in range(epochs):
            gains = [slope * epoch, 2 * slope * epoch, -0.01 * epoch, "nan"]
            score = "NA" if epoch == 1 else slope * epoch  # an epoch that was not scored
            writer.writerow([epoch, 1.0, 50 * (epoch + 1), 0.7 * (epoch + 1), score, *gains])
    return folder


def test_cli_writes_the_png_and_the_merged_csv(tmp_path):
    runs = [_fake_run(tmp_path / "a", 0.1), _fake_run(tmp_path / "b", 0.2)]
    output = tmp_path / "docs" / "curves.png"
    completed = subprocess.run(
        [sys.executable, "-m", "keras_deblur.learning_curves"]
        + [f"--runs={runs[0]},{runs[1]}", f"--output={output}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 10_000
    with open(tmp_path / "docs" / "curves.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["run"] for row in rows] == ["a"] * 4 + ["b"] * 4
    assert float(rows[7]["val_gain_long"]) == pytest.approx(1.2)
    assert rows[1]["val_score"] == "nan"


def test_a_log_without_steps_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "training_log.csv").write_text("epoch,val_psnr\n0,25.0\n")
    with pytest.raises(ValueError, match="training_log.csv: no steps column"):
        read_training_log(folder)
    with pytest.raises(FileNotFoundError, match="missing"):
        merge_runs([tmp_path / "missing"])


def test_snapshots_are_scored_once_with_the_logs_steps_and_cpu_minutes(tmp_path):
    import numpy as np

    from keras_deblur.models import build_mobile_generator
    from keras_deblur.validation import ValidationPairs
    from keras_deblur.validation.curves import score_snapshots

    rng = np.random.default_rng(0)
    samples, blurred, sharp = [], [], []
    for index, name in enumerate(CLASSES * 2):
        image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        samples.append({"id": f"s{index}", "photo": f"p{index % 3}", "class": name, "whole": False})
        blurred.append((image // 2 + 64).astype(np.uint8) if name in ("short", "long") else image)
        sharp.append(image)
    pairs = ValidationPairs(samples, blurred, sharp)
    run = _fake_run(tmp_path / "run", 0.1, epochs=3)
    (run / "snapshots").mkdir()
    identity = build_mobile_generator(num_filters=8, num_res_blocks=1)
    noisy = build_mobile_generator(num_filters=8, num_res_blocks=1)
    noisy.get_layer("tail_conv").set_weights(
        [w + 0.05 for w in noisy.get_layer("tail_conv").get_weights()]
    )
    for epoch, model in ((1, identity), (3, noisy)):
        model.save(str(run / "snapshots" / f"epoch_{epoch:03d}.keras"))
    messages = []
    path = score_snapshots(str(run), pairs, progress=messages.append)
    rows = read_training_log(path)
    assert [row["epoch"] for row in rows] == [0, 2]  # 0-based, like the training log
    assert [row["steps"] for row in rows] == [50, 150]  # from training_log.csv's epochs 0, 2
    assert rows[0]["val_score"] == 0.0 and rows[0]["val_gain_short"] == 0.0  # the identity
    assert rows[1]["val_score"] < 0  # a generator that adds a constant does harm
    assert len(messages) == 2
    score_snapshots(str(run), pairs, progress=messages.append)
    assert len(messages) == 2  # nothing scored twice
