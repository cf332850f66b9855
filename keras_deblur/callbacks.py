"""Callbacks around DeblurGAN training: checkpoints, best generator, images, divergence.

Each writes under an explicit directory given to it; none reads global state.
"""

import json
import logging
import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_deblur.data.images import write_image
from keras_deblur.inference import from_model_range

logger = logging.getLogger(__name__)

# Training logs that must stay finite; PSNR may legitimately be inf on identical images.
LOSS_KEYS = (
    "critic_loss",
    "generator_loss",
    "gradient_penalty",
    "perceptual_loss",
    "wasserstein_distance",
)


def _finite_losses(logs):
    return all(math.isfinite(float(logs[key])) for key in LOSS_KEYS if key in (logs or {}))


def make_checkpoint(gan, epoch):
    """A `tf.train.Checkpoint` of everything needed to resume DeblurGAN training.

    Args:
        gan: compiled `DeblurGAN`; its optimizers must be built
            (`gan.build_optimizers()`) so that restoring fills real variables.
        epoch: int `tf.Variable`. Completed epochs.

    Returns:
        `tf.train.Checkpoint` with the generator, critic, both optimizers (their
        step counters drive the learning rate schedules), the sampling seed
        state and the epoch counter. The frozen VGG features are included too:
        with random VGG weights (offline fallback) a resumed run must compare
        the same features.
    """
    objects = dict(
        generator=gan.generator,
        critic=gan.critic,
        g_optimizer=gan.g_optimizer,
        d_optimizer=gan.d_optimizer,
        seed_state=gan.seed_generator.state,
        epoch=epoch,
    )
    if gan.perceptual_loss is not None:  # None when training with content_weight=0
        objects["perceptual_loss"] = gan.perceptual_loss
    return tf.train.Checkpoint(**objects)


class CheckpointSaver(keras.callbacks.Callback):
    """Saves a resumable checkpoint after every epoch whose losses are finite.

    TensorFlow writes checkpoint data to temporary files and renames them,
    and rewrites the `checkpoint` index file atomically, so an interrupted
    save never replaces the last good checkpoint. `manager` keeps the last N.

    Args:
        manager: `tf.train.CheckpointManager` over `make_checkpoint(...)`.
        epoch: int `tf.Variable` stored in that checkpoint (completed epochs).
    """

    def __init__(self, manager, epoch):
        super().__init__()
        self.manager = manager
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_losses(logs):
            logger.error(
                "Epoch %d ended with non-finite losses; keeping the last good checkpoint %s",
                epoch + 1,
                self.manager.latest_checkpoint,
            )
            return
        self.epoch.assign(epoch + 1)
        path = self.manager.save(checkpoint_number=epoch + 1)
        logger.info("Saved checkpoint %s", path)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training as soon as a loss becomes NaN or Inf, and says so.

    `CheckpointSaver` then skips the epoch, so the last good checkpoint stays.
    `self.message` holds the one-line reason once stopped (None before).
    """

    def __init__(self):
        super().__init__()
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.message is not None or _finite_losses(logs):
            return
        values = ", ".join(f"{key}={float(logs[key]):.4g}" for key in LOSS_KEYS if key in logs)
        self.message = (
            f"Training diverged at epoch {self._epoch + 1}, step {batch + 1}: {values}. "
            "Stopped; the last good checkpoint is kept."
        )
        logger.error(self.message)
        self.model.stop_training = True


def _save_keras_atomically(model, path):
    """Writes `model` to `path` (.keras) via a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".keras", dir=directory, prefix=".tmp_")
    os.close(handle)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


class BestGeneratorSaver(keras.callbacks.Callback):
    """Saves the generator as `.keras` whenever the validation PSNR improves.

    The best value and its epoch are kept in `<path without .keras>.json`, so
    a resumed run only overwrites the file with a better generator.

    Args:
        path: str. Destination `.keras` file.
        monitor: str. Log key to maximise. Defaults to "val_psnr".
    """

    def __init__(self, path, monitor="val_psnr"):
        super().__init__()
        self.path = str(path)
        self.monitor = monitor
        self.record_path = os.path.splitext(self.path)[0] + ".json"
        self.best = -math.inf
        if os.path.exists(self.record_path):
            with open(self.record_path) as file:
                self.best = float(json.load(file)[monitor])

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)) or float(value) <= self.best:
            return
        self.best = float(value)
        _save_keras_atomically(self.model.generator, self.path)
        with open(self.record_path, "w") as file:
            json.dump({self.monitor: self.best, "epoch": epoch + 1}, file)
        logger.info("New best %s=%.3f: saved %s", self.monitor, self.best, self.path)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds both optimizers' current learning rates to the epoch logs.

    Put it before `TensorBoard` and `CSVLogger` so they record the rates.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key, optimizer in (
            ("g_learning_rate", self.model.g_optimizer),
            ("d_learning_rate", self.model.d_optimizer),
        ):
            logs[key] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class SampleImages(keras.callbacks.Callback):
    """Writes blurred | deblurred | sharp strips of fixed images after each epoch.

    To TensorBoard (`log_dir`, tag "samples") and as PNG files in `image_dir`.

    Args:
        blurred: float array `(n, H, W, 3)` in [-1, 1]; H, W multiples of 4.
        sharp: float array `(n, H, W, 3)` in [-1, 1].
        log_dir: str or None. TensorBoard directory.
        image_dir: str or None. Folder for `epoch_<NNN>.png`.
    """

    def __init__(self, blurred, sharp, log_dir=None, image_dir=None):
        super().__init__()
        self.blurred = np.asarray(blurred, "float32")
        self.sharp = np.asarray(sharp, "float32")
        self.log_dir = log_dir
        self.image_dir = image_dir
        self._writer = None

    def _strips(self):
        deblurred = keras.ops.convert_to_numpy(
            self.model.generator(self.blurred, training=False)
        ).astype("float32")
        strips = np.concatenate([self.blurred, deblurred, self.sharp], axis=2)
        return from_model_range(strips)

    def on_epoch_end(self, epoch, logs=None):
        if not _finite_losses(logs):
            return  # diverged weights draw nothing useful
        strips = self._strips()
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
            with self._writer.as_default():
                tf.summary.image("samples", strips, step=epoch + 1, max_outputs=len(strips))
            self._writer.flush()
        if self.image_dir is not None:
            os.makedirs(self.image_dir, exist_ok=True)
            write_image(
                os.path.join(self.image_dir, f"epoch_{epoch + 1:03d}.png"),
                np.concatenate(list(strips), axis=0),
            )
