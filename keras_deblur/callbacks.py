"""Callbacks around DeblurGAN training: checkpoints, best generator, images, divergence,
validation scores.

Each writes under an explicit directory given to it; none reads global state.
"""

import csv
import glob
import json
import logging
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_deblur.cli import first_line
from keras_deblur.data.images import write_image
from keras_deblur.inference import from_model_range
from keras_deblur.multi_worker import any_worker
from keras_deblur.validation.manifest import CLASSES
from keras_deblur.validation.scoring import score_generator

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
    A save that fails (full disk, file size limit) raises a one-line
    `OSError` after removing its partial files; the earlier checkpoints stay.

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
        try:
            path = self.manager.save(checkpoint_number=epoch + 1)
        except (tf.errors.OpError, OSError) as error:
            remove_partial_saves(self.manager.directory)
            raise OSError(
                f"{self.manager.directory}: checkpoint {epoch + 1} not saved "
                f"({first_line(error)}); the earlier checkpoints are intact, latest: "
                f"{self.manager.latest_checkpoint}"
            ) from error
        logger.info("Saved checkpoint %s", path)


def remove_partial_saves(directory):
    """Deletes what killed or failed saves left in `directory`.

    TensorFlow's `<prefix>_temp` folders and the `.tmp_*` files of
    `_write_atomically` are never read back, and on a full disk they hold the
    space that the next save needs.
    """
    for path in glob.glob(os.path.join(glob.escape(directory), "*_temp")):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
    for path in glob.glob(os.path.join(glob.escape(directory), ".tmp_*")):
        if os.path.isfile(path):
            os.remove(path)


def has_checkpoint(directory):
    """Whether `directory` holds a checkpoint state file or any checkpoint index."""
    return os.path.exists(os.path.join(directory, "checkpoint")) or bool(
        glob.glob(os.path.join(glob.escape(directory), "*.index"))
    )


def checkpoint_damage(prefix):
    """Why the checkpoint at `prefix` cannot be restored, or None if it reads back intact.

    Every tensor is read: the reader checks each against the CRC32C stored in
    the index, so truncated or garbled `.index`/`.data` files are found
    before anything is assigned to the model.

    Returns:
        None, or `(path, reason)`: the damaged (or missing) file and one line on why.
    """
    index = prefix + ".index"
    if not os.path.exists(index):
        return index, "missing"
    # The reader raises OpError, IndexError, ... depending on what is wrong
    # with the bytes; whichever it is, the file is not intact.
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as error:  # noqa: BLE001
        return index, first_line(error)
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001
        shards = glob.glob(glob.escape(prefix) + ".data-*")
        return (shards[0] if len(shards) == 1 else prefix + ".data-*"), first_line(error)
    return None


def _newest_first(manager):
    """Checkpoint prefixes to try, newest first: the state file's, else those on disk."""
    paths = list(reversed(manager.checkpoints))
    if manager.latest_checkpoint and manager.latest_checkpoint not in paths:
        paths.insert(0, manager.latest_checkpoint)
    if paths:
        return paths
    state = os.path.join(manager.directory, "checkpoint")
    if os.path.exists(state):
        logger.warning("%s: unreadable; looking for checkpoint files instead", state)
    indexes = glob.glob(os.path.join(glob.escape(manager.directory), "*.index"))

    def number(prefix):
        tail = prefix.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    return sorted((path[: -len(".index")] for path in indexes), key=number, reverse=True)


def newest_intact_checkpoint(manager):
    """The newest checkpoint of `manager` that reads back intact.

    A run killed or out of disk space while saving never leaves a damaged
    checkpoint behind TensorFlow's atomic renames, but a file can still be
    truncated or garbled later (copies, disks). Each damaged or missing one is
    skipped with a one-line warning naming the file.

    Raises:
        ValueError: none is intact (one line naming the directory).
    """
    tried = []
    for prefix in _newest_first(manager):
        damage = checkpoint_damage(prefix)
        if damage is None:
            return prefix
        logger.warning("%s: %s; skipping checkpoint %s", *damage, os.path.basename(prefix))
        tried.append(os.path.basename(prefix))
    raise ValueError(
        f"{manager.directory}: no intact checkpoint to resume from "
        f"(tried: {', '.join(tried) or 'none found'})"
    )


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


def _write_atomically(path, write):
    """Calls `write(temporary)` on a temporary file beside `path`, then renames it to `path`.

    A kill mid-write leaves a `.tmp_*` file, never a half file under `path`.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    handle, temporary = tempfile.mkstemp(suffix=suffix, dir=directory, prefix=".tmp_")
    os.close(handle)
    try:
        write(temporary)
        _chmod_like_open(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise OSError(f"{path}: not saved ({error.strerror or error})") from error
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _save_keras_atomically(model, path):
    """Writes `model` to `path` (.keras) via a temporary file in the same directory."""
    _write_atomically(path, model.save)


def _float32_dtypes(config):
    """A layer config tree with every mixed dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("module") == "keras" and str(config.get("class_name")).endswith(
            "DTypePolicy"
        ):
            return "float32"
        return {key: _float32_dtypes(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_dtypes(value) for value in config]
    return config


def float32_generator(generator):
    """`generator` itself if it computes in float32, else a float32 copy with its weights.

    A generator trained under a mixed policy (bf16 on AMX CPUs, fp16 on GPUs)
    would otherwise be saved with it, and inference, evaluation and TFLite
    export would depend on the machine that trained it.
    """
    if all(layer.dtype_policy.name == "float32" for layer in generator.layers):
        return generator
    config = _float32_dtypes(generator.get_config())
    copy = generator.__class__.from_config(config)
    copy.set_weights(generator.get_weights())
    return copy


def save_generator(generator, path):
    """Saves a generator as a float32 `.keras` file, atomically (see `float32_generator`)."""
    _save_keras_atomically(float32_generator(generator), path)


def write_json_atomically(path, value):
    """Writes `value` as JSON to `path` via a temporary file, so a kill never truncates it."""

    def write(temporary):
        with open(temporary, "w") as file:
            json.dump(value, file, indent=2)

    _write_atomically(path, write)


def _chmod_like_open(path):
    """mkstemp creates files 0600; give them the mode `open()` would (0666 minus umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


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
            try:
                with open(self.record_path) as file:
                    self.best = float(json.load(file)[monitor])
            except (ValueError, KeyError, TypeError) as error:
                logger.warning(
                    "%s: unreadable (%s); the next validation result replaces %s",
                    self.record_path,
                    first_line(error),
                    self.path,
                )

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)) or float(value) <= self.best:
            return
        self.best = float(value)
        save_generator(self.model.generator, self.path)
        write_json_atomically(self.record_path, {self.monitor: self.best, "epoch": epoch + 1})
        logger.info("New best %s=%.3f: saved %s", self.monitor, self.best, self.path)


class SkippedValidationAsNaN(keras.callbacks.Callback):
    """Logs NaN for validation keys on the epochs that were not validated.

    `fit(validation_freq=...)` leaves those keys out, and the CSV logger fixes
    its columns from one epoch's logs: without this a log whose first epoch
    skipped validation would never get the columns, and a resumed log would
    shift its rows. Put it before `CSVLogger` and `TensorBoard`.

    Args:
        keys: iterable of str, e.g. `("val_psnr", "val_ssim")`.
    """

    def __init__(self, keys):
        super().__init__()
        self.keys = tuple(keys)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for key in self.keys:
                logs.setdefault(key, math.nan)


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


class TrainingClock(keras.callbacks.Callback):
    """Adds `steps`, `cpu_minutes` and `wall_minutes` to the epoch logs; stops at a CPU budget.

    The budget is CPU time rather than wall time, so that runs compared in a
    study (the same budget for each candidate) stay comparable when other work
    shares the machine; it counts every thread of the process, the input
    pipeline's too. Wall minutes give the steps per minute a run really got.
    Put it before `CSVLogger` so the training log records the columns.

    Args:
        initial_cpu_minutes: float. CPU minutes already spent (a resumed run
            continues its count, see `spent_minutes`). Defaults to 0.
        max_cpu_minutes: float or None. Stop training at the end of the first
            epoch past this budget (on any worker of a multi-worker run: all
            stop together). Defaults to None (no budget).
        uncounted: callbacks whose `cpu_seconds` are not training time (e.g. a
            `ValidationScorer`, whose cost differs between designs). Defaults to ().
        initial_wall_minutes: float. Wall minutes already spent. Defaults to 0.
    """

    def __init__(
        self, initial_cpu_minutes=0.0, max_cpu_minutes=None, uncounted=(), initial_wall_minutes=0.0
    ):
        super().__init__()
        self.initial_cpu_minutes = float(initial_cpu_minutes)
        self.max_cpu_minutes = max_cpu_minutes
        self.uncounted = tuple(uncounted)
        self.initial_wall_minutes = float(initial_wall_minutes)
        self._start = time.process_time()
        self._wall_start = time.monotonic()

    def cpu_minutes(self):
        spent = time.process_time() - self._start
        spent -= sum(callback.cpu_seconds for callback in self.uncounted)
        return self.initial_cpu_minutes + spent / 60.0

    def on_epoch_end(self, epoch, logs=None):
        minutes = self.cpu_minutes()
        if logs is not None:
            optimizer = getattr(self.model, "g_optimizer", None) or self.model.optimizer
            logs["steps"] = int(keras.ops.convert_to_numpy(optimizer.iterations))
            logs["cpu_minutes"] = round(minutes, 3)
            wall = self.initial_wall_minutes + (time.monotonic() - self._wall_start) / 60.0
            logs["wall_minutes"] = round(wall, 3)
        if self.max_cpu_minutes is None:
            return
        # Every worker of a cluster must stop at the same epoch; each counts its own CPU.
        spent = any_worker(self.model.distribute_strategy, minutes >= self.max_cpu_minutes)
        if spent:
            logger.info("CPU budget of %.1f minutes spent: stopping", self.max_cpu_minutes)
            self.model.stop_training = True


def spent_minutes(run_dir):
    """The last `(cpu_minutes, wall_minutes)` of a run's training log (0 where missing).

    A resumed run's `TrainingClock` starts from them, so the counts cover the whole run.
    """
    path = os.path.join(run_dir, "training_log.csv")
    try:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
    except OSError:
        return 0.0, 0.0
    last = rows[-1] if rows else {}

    def number(key):
        try:
            return float(last.get(key) or 0.0)
        except ValueError:
            return 0.0

    return number("cpu_minutes"), number("wall_minutes")


class GeneratorSnapshots(keras.callbacks.Callback):
    """Saves the generator after every epoch as `directory/epoch_NNN.keras`.

    For learning curves scored afterwards on another validation set, and for
    picking an epoch by hand; about 2.7 MB per mobile-sized snapshot.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = str(directory)

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.directory, f"epoch_{epoch + 1:03d}.keras")
        save_generator(self.model.generator, path)


class SampleImages(keras.callbacks.Callback):
    """Writes blurred | deblurred | sharp strips of fixed images after epochs.

    To TensorBoard (`log_dir`, tag "samples") and as PNG files in `image_dir`.

    Args:
        blurred: float array `(n, H, W, 3)` in [-1, 1]; H, W multiples of 4.
        sharp: float array `(n, H, W, 3)` in [-1, 1].
        log_dir: str or None. TensorBoard directory.
        image_dir: str or None. Folder for `epoch_<NNN>.png`.
        epochs: collection of 1-based epochs to draw after, or None for every
            epoch. Training passes its validating epochs: a drawing costs
            ~0.2 s, 2% of a 100-step campaign epoch on 2 cores.
    """

    def __init__(self, blurred, sharp, log_dir=None, image_dir=None, epochs=None):
        super().__init__()
        self.blurred = np.asarray(blurred, "float32")
        self.sharp = np.asarray(sharp, "float32")
        self.log_dir = log_dir
        self.image_dir = image_dir
        self.epochs = None if epochs is None else frozenset(epochs)
        self._writer = None

    def _strips(self):
        deblurred = keras.ops.convert_to_numpy(
            self.model.generator(self.blurred, training=False)
        ).astype("float32")
        strips = np.concatenate([self.blurred, deblurred, self.sharp], axis=2)
        return from_model_range(strips)

    def on_epoch_end(self, epoch, logs=None):
        if self.epochs is not None and epoch + 1 not in self.epochs:
            return
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


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` logging after each epoch only, with no per-batch cost.

    Keras' callback (3.15), even with `update_freq="epoch"`, calls
    `tf.summary.scalar` for every log after every batch, with no default
    writer, so nothing is written: 1.5 ms of each mobile campaign step on 2
    CPU cores. Here that hook does nothing; the graph and the profiler, which
    it would also serve, are off.

    Args:
        log_dir: str. TensorBoard directory.
    """

    def __init__(self, log_dir):
        super().__init__(log_dir, write_graph=False, update_freq="epoch", profile_batch=0)

    def on_train_batch_end(self, batch, logs=None):
        return  # see the class docstring


class ValidationScorer(keras.callbacks.Callback):
    """Scores the generator on fixed validation pairs and adds the scores to the epoch logs.

    Keys added to `logs` at every epoch end: `val_score` (the selection score
    of `keras_deblur.validation.scoring`) and `val_gain_<class>` for each class
    in `keras_deblur.validation.CLASSES` (dB over the blurred input; NaN for a
    class the pairs lack). On epochs it skips, the `val_*` keys are NaN, so
    `CSVLogger` keeps its columns and `BestGeneratorSaver` ignores them. Put it
    before `BestGeneratorSaver(monitor="val_score")`, `CSVLogger` and
    `TensorBoard`. Its own CPU time is in `cpu_seconds`, which
    `TrainingClock(uncounted=[scorer])` leaves out of the training's.

    Args:
        pairs: `keras_deblur.validation.ValidationPairs`, crops of one size
            (`pairs.select(False)`), e.g. from `materialise(load_manifest(), ...)`.
        every_n_epochs: int. Score after every n-th epoch (and never skip the
            last one). Defaults to 1.
        batch_size: int. Crops per `predict_on_batch` call. Defaults to 16.
    """

    def __init__(self, pairs, every_n_epochs=1, batch_size=16):
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1. Received: {every_n_epochs}")
        self.pairs = pairs
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.cpu_seconds = 0.0

    def _due(self, epoch):
        last = epoch + 1 == self.params.get("epochs") if self.params else False
        last = last or self.model.stop_training  # e.g. a TrainingClock's CPU budget ran out
        return (epoch + 1) % self.every_n_epochs == 0 or last

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        generator = getattr(self.model, "generator", self.model)
        values = dict.fromkeys(["val_score"] + [f"val_gain_{name}" for name in CLASSES], math.nan)
        if self._due(epoch) and _finite_losses(logs):
            start = time.process_time()
            result = score_generator(generator, self.pairs, self.batch_size, with_ssim=False)
            self.cpu_seconds += time.process_time() - start
            values["val_score"] = result["val_score"]
            for name, summary in result["classes"].items():
                values[f"val_gain_{name}"] = summary["gain"]
            logger.info(
                "Validation after epoch %d: val_score %.3f dB (%.1f s)",
                epoch + 1,
                result["val_score"],
                result["seconds"],
            )
        logs.update(values)
