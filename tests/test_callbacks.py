"""Callbacks: the validation scorer's log keys, the best generator saved on them, samples."""

import csv
import math
import time

import keras
import numpy as np

from keras_deblur.callbacks import (
    BestGeneratorSaver,
    EpochTensorBoard,
    SampleImages,
    TrainingClock,
    ValidationScorer,
)
from keras_deblur.validation import CLASSES, ValidationPairs


def _pairs():
    rng = np.random.default_rng(0)
    samples, blurred, sharp = [], [], []
    for index, name in enumerate(CLASSES * 2):
        image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        shaken = name in ("short", "long")
        samples.append(
            {"id": f"{name}_{index}", "photo": f"p{index % 3}", "class": name, "whole": False}
        )
        blurred.append((image // 2 + 64).astype(np.uint8) if shaken else image)
        sharp.append(image)
    return ValidationPairs(samples, blurred, sharp)


class _Trainer(keras.Model):
    """Stands in for DeblurGAN: the scorer and the saver use its `generator`."""

    def __init__(self, generator):
        super().__init__(name="trainer")
        self.generator = generator

    def call(self, x):
        return self.generator(x)


def _model():
    inputs = keras.Input((16, 16, 3))
    identity = keras.initializers.Constant(np.eye(3).reshape(1, 1, 3, 3))
    outputs = keras.layers.Conv2D(3, 1, kernel_initializer=identity)(inputs)
    model = _Trainer(keras.Model(inputs, outputs))
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    return model


def test_scorer_and_clock_put_scores_steps_and_cpu_minutes_in_the_csv_log(tmp_path):
    model = _model()
    scorer = ValidationScorer(_pairs(), every_n_epochs=2)
    x = np.zeros((4, 16, 16, 3), "float32")
    log = tmp_path / "training_log.csv"
    best = tmp_path / "best_generator.keras"
    model.fit(
        x,
        x,
        batch_size=2,
        epochs=3,
        verbose=0,
        callbacks=[
            TrainingClock(uncounted=[scorer]),
            scorer,
            BestGeneratorSaver(str(best), monitor="val_score"),
            keras.callbacks.CSVLogger(str(log)),
        ],
    )
    with open(log) as file:
        rows = list(csv.DictReader(file))
    keys = ["val_score", "steps", "cpu_minutes"] + [f"val_gain_{name}" for name in CLASSES]
    assert all(key in rows[0] for key in keys)
    assert [int(float(row["steps"])) for row in rows] == [2, 4, 6]
    assert all(float(row["cpu_minutes"]) >= 0 for row in rows)
    scored = [math.isfinite(float(row["val_score"])) for row in rows]
    assert scored == [False, True, True]  # every 2nd epoch, and the last one
    assert best.exists()


def test_clock_leaves_out_the_scorers_time_and_stops_at_its_budget():
    class Busy:
        cpu_seconds = 0.0

    busy = Busy()
    clock = TrainingClock(initial_cpu_minutes=1.0, uncounted=[busy])
    before = clock.cpu_minutes()
    start = time.process_time()
    while time.process_time() - start < 0.3:  # CPU work done by the "scorer"
        pass
    busy.cpu_seconds = time.process_time() - start
    assert abs(clock.cpu_minutes() - before) < 0.1 / 60  # not counted
    assert before >= 1.0

    model = _model()
    model.fit(
        np.zeros((4, 16, 16, 3), "float32"),
        np.zeros((4, 16, 16, 3), "float32"),
        batch_size=2,
        epochs=5,
        verbose=0,
        callbacks=[TrainingClock(max_cpu_minutes=1e-9), scorer := ValidationScorer(_pairs(), 5)],
    )
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2  # one epoch
    assert scorer.cpu_seconds > 0  # the stopped run's last epoch was scored, not skipped


def _summary_tags(directory):
    import glob

    import tensorflow as tf

    tags = set()
    for path in glob.glob(str(directory / "train" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_epoch_tensorboard_writes_what_keras_tensorboard_writes_per_epoch(tmp_path):
    x = np.zeros((4, 16, 16, 3), "float32")
    ours, theirs = tmp_path / "ours", tmp_path / "keras"
    for callback in (
        EpochTensorBoard(str(ours)),
        keras.callbacks.TensorBoard(str(theirs), write_graph=False),
    ):
        _model().fit(x, x, batch_size=2, epochs=2, verbose=0, callbacks=[callback])
    assert "epoch_loss" in _summary_tags(ours)
    assert _summary_tags(ours) == _summary_tags(theirs)


def test_sample_images_are_drawn_after_the_given_epochs_only(tmp_path):
    x = np.zeros((2, 16, 16, 3), "float32")
    every, some = tmp_path / "every", tmp_path / "some"
    callbacks = [
        SampleImages(x, x, image_dir=str(every)),
        SampleImages(x, x, image_dir=str(some), epochs=[2, 4]),
    ]
    _model().fit(x, x, batch_size=2, epochs=4, verbose=0, callbacks=callbacks)
    assert sorted(p.name for p in every.iterdir()) == [f"epoch_00{n}.png" for n in (1, 2, 3, 4)]
    assert sorted(p.name for p in some.iterdir()) == ["epoch_002.png", "epoch_004.png"]
