"""Train DeblurGAN: `python -m keras_deblur.train` and the `train(recipe)` library function.

With no flags, trains the paper's generator, critic and losses on the photos
embedded in scikit-image (blurred on the fly) with a short schedule that ends
in a few minutes on a 2-core CPU (the `quick` preset), and prints where
everything went:

    python -m keras_deblur.train

Every flag but --preset, --output_dir and --resume is a field of the training
recipe (`keras_deblur.recipe.Recipe`); a preset gives the starting values and
the flags set override them. The paper's schedule (300 epochs: 150 at 1e-4,
then 150 decaying to 0) on GoPro:

    python -m keras_deblur.train --preset=paper --paired_dirs=GOPRO_Large/train \\
        --sharp_dirs=extra_sharp_photos --val_paired_dirs=GOPRO_Large/test

Resume an interrupted run (Ctrl-C saves a checkpoint first); flags given with
--resume change the saved recipe (e.g. more --epochs):

    python -m keras_deblur.train --resume --output_dir=runs/20260101-120000

From Python or a notebook:

    from keras_deblur.recipe import get_preset
    from keras_deblur.train import train
    result = train(get_preset("mobile").replace(sharp_dirs=("photos/",)), "runs/mine")

VGG19 weights: `--vgg_weights=auto` (default) uses the ImageNet weights,
from Keras' cache (~/.keras/models) or downloaded; where neither works (no
internet) it falls back to random VGG features with a loud warning, so the
default command still runs offline. Use `--vgg_weights=imagenet` to make a
missing download an error, or pass the path of
`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`.
"""

import dataclasses
import datetime
import inspect
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from keras_deblur import callbacks as callbacks_lib
from keras_deblur import losses, multi_worker
from keras_deblur.cli import first_line, reports_errors
from keras_deblur.cpu import bfloat16_pays, cpu_flags, cpu_isa
from keras_deblur.data import images as images_lib
from keras_deblur.data.embedded import EMBEDDED, photo_paths
from keras_deblur.gan import TEST_METRICS, DeblurGAN
from keras_deblur.models import GENERATOR_BUILDERS, build_critic
from keras_deblur.recipe import (
    FIELD_NAMES,
    PRESETS,
    STRATEGIES,
    VGG_AUTO,
    Recipe,
    field_type,
    is_optional,
)
from keras_deblur.schedules import ConstantThenLinearDecay

logger = logging.getLogger(__name__)

RECIPE_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"


@dataclasses.dataclass
class TrainingResult:
    """What `train()` produced.

    Attributes:
        run_dir: str. Folder holding everything below.
        history: dict. Per-epoch logs (`keras.callbacks.History.history`).
        best_generator: str or None. `.keras` generator with the best validation score.
        final_generator: str or None. `.keras` generator at the end of training.
        checkpoint: str or None. Latest resumable checkpoint.
        stopped_early: str or None. Why training stopped before the last epoch.
    """

    run_dir: str
    history: dict
    best_generator: str | None
    final_generator: str | None
    checkpoint: str | None
    stopped_early: str | None = None


def train(recipe, output_dir=None, resume=False, verbose="auto"):
    """Trains DeblurGAN as `recipe` says and writes everything under one run directory.

    Data: `paired_dirs` (GoPro layout `<scene>/blur|sharp/*.png`), `sharp_dirs`
    (photos blurred on the fly by random-trajectory motion blur; `"embedded"`
    names the photos embedded in scikit-image), mixed `synthetic_ratio`
    synthetic : rest real when both are given; neither means the embedded
    photos. Validation likewise from `val_*` (embedded validation photos when
    empty), centre-cropped to `crop_size`, and, with `validation_photos`, the
    fixed validation set of `keras_deblur.validation`, whose `val_score` then
    picks the best generator. Phases: the first `warmup_epochs` train the
    generator alone on the content terms (no critic); the rest are
    DeblurGAN's WGAN-GP training.

    Run directory (`output_dir`, default a new folder under ./runs/):
    `config.json` (the recipe), `run_info.json` (what the run resolved: steps
    per epoch, VGG weights, precision, CPU), `checkpoints/` (the last
    `keep_checkpoints`, resumable), `best_generator.keras`,
    `final_generator.keras`, `training_log.csv` (with `steps` and
    `cpu_minutes`), `logs/` (TensorBoard), `samples/epoch_NNN.png`, and with
    `snapshots` every epoch's generator under `snapshots/`. In a multi-worker
    run the chief alone writes it; every worker restores from it on `resume`.

    Args:
        recipe: `keras_deblur.recipe.Recipe`. What to train and how.
        output_dir: str or None. Run directory; must hold a checkpoint when
            `resume` is True.
        resume: bool. Continue the run in `output_dir` from its newest intact
            checkpoint (with `recipe`, usually `load_recipe(output_dir)`).
        verbose: passed to `keras.Model.fit`.

    Returns:
        `TrainingResult` (on a non-chief worker: no checkpoint or final
        generator). Ctrl-C saves a checkpoint (a multi-worker run keeps its
        last epoch's), then raises KeyboardInterrupt. A worker lost from the
        cluster raises a one-line `ConnectionError`.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"train() takes a Recipe. Received: {type(recipe).__name__}")
    if resume and not output_dir:
        raise ValueError("resume needs output_dir: the run directory to continue")
    if resume and not callbacks_lib.has_checkpoint(_checkpoint_dir(output_dir)):
        raise FileNotFoundError(f"{output_dir}: no checkpoint to resume from")
    previous_policy = keras.config.dtype_policy()
    previous_pixels = (images_lib.MAX_PIXELS, Image.MAX_IMAGE_PIXELS)
    try:
        if recipe.max_pixels is not None:  # before the data check, which reads headers
            images_lib.set_max_pixels(recipe.max_pixels)
        _check_data(recipe)
        run_dir = os.path.abspath(output_dir or default_run_dir())
        keras.utils.set_random_seed(recipe.seed)
        strategy = make_strategy(recipe.strategy, recipe.tpu_address)
        if multi_worker.task(strategy)[0]:  # the other workers of a cluster write nothing there
            os.makedirs(run_dir, exist_ok=True)
        policy, reason = _run_precision(recipe, run_dir if resume else None)
        logger.info("Precision: %s (%s)", policy, reason)
        keras.config.set_dtype_policy(policy)
        return _run(recipe, run_dir, resume, strategy, verbose)
    finally:
        keras.config.set_dtype_policy(previous_policy)
        images_lib.MAX_PIXELS, Image.MAX_IMAGE_PIXELS = previous_pixels


def _run_precision(recipe, resumed_run_dir):
    """The dtype policy of a run: a resumed "auto" run keeps the one it started with.

    Checkpoints and optimizers differ between policies (fp16 adds loss
    scaling), and a run should not change arithmetic half-way.
    """
    if resumed_run_dir and recipe.precision == "auto":
        try:
            with open(os.path.join(resumed_run_dir, RUN_INFO_FILE)) as file:
                return json.load(file)["dtype_policy"], "auto: as the run started"
        except (OSError, ValueError, KeyError):
            pass
    return resolve_precision(recipe.precision, recipe.jit_compile)


def _run(recipe, run_dir, resume, strategy, verbose):
    """The run, top to bottom: sizes, models, checkpoints, records, data, callbacks, phases."""
    replicas = strategy.num_replicas_in_sync
    if recipe.batch_size % replicas:
        raise ValueError(
            f"batch_size must be a multiple of the {replicas} replicas. "
            f"Received: batch_size={recipe.batch_size}"
        )
    steps_per_epoch = recipe.steps_per_epoch or max(_epoch_size(recipe) // recipe.batch_size, 1)
    chief, worker = multi_worker.task(strategy)
    with strategy.scope():
        gan, vgg_used = _build_gan(recipe, steps_per_epoch, initialise=not resume)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = callbacks_lib.make_checkpoint(gan, epoch)
    manager = _checkpoint_manager(checkpoint, run_dir, chief, recipe.keep_checkpoints)
    try:
        if resume:
            _restore(manager, checkpoint, run_dir, chief, gan, epoch)
        if chief:  # atomically: a kill mid-write must not leave a config that --resume cannot read
            callbacks_lib.write_json_atomically(
                os.path.join(run_dir, RECIPE_FILE), recipe.to_dict()
            )
            callbacks_lib.write_json_atomically(
                os.path.join(run_dir, RUN_INFO_FILE),
                _run_info(steps_per_epoch, vgg_used, replicas),
            )
        train_ds, val_ds, validation_steps, samples = _datasets(recipe, replicas, worker, chief)
        callbacks, stop_on_nan = _callbacks(recipe, run_dir, manager, epoch, chief, resume, samples)
        logger.info(
            "Training %d epochs x %d steps (batch %d, crop %d, %d replica(s), %s, CPU %s) into %s",
            recipe.epochs,
            steps_per_epoch,
            recipe.batch_size,
            recipe.crop_size,
            replicas,
            keras.config.dtype_policy().name,
            cpu_isa(),
            run_dir,
        )
        history = _fit_or_save(
            gan,
            recipe,
            manager,
            run_dir,
            train_ds,
            int(epoch.numpy()),
            steps_per_epoch=steps_per_epoch,
            validation_data=val_ds,
            validation_steps=validation_steps,
            validation_freq=validation_epochs(recipe),
            callbacks=callbacks,
            verbose=verbose,
        )
        return _finish(gan, run_dir, chief, manager, history, stop_on_nan.message)
    finally:
        if not chief:  # its checkpoints only took part in the collective saves
            shutil.rmtree(manager.directory, ignore_errors=True)


def _fit_or_save(gan, recipe, manager, run_dir, train_ds, initial_epoch, **fit_kwargs):
    """`_fit_phases`; Ctrl-C saves a checkpoint, a lost worker is a one-line error.

    A multi-worker run saves nothing on Ctrl-C (its save is collective, and
    the other workers are not saving): it keeps its last epoch's checkpoint
    and says so in the KeyboardInterrupt it raises.
    """
    cluster = multi_worker.is_multi_worker(gan.distribute_strategy)
    try:
        return _fit_phases(gan, recipe, train_ds, initial_epoch, **fit_kwargs)
    except KeyboardInterrupt:
        if cluster:
            raise KeyboardInterrupt("the last epoch's checkpoint is kept") from None
        if _weights_finite(gan):
            path = manager.save()
            logger.warning("Interrupted: saved checkpoint %s; resume with --resume", path)
        raise
    except tf.errors.OpError as error:
        if not cluster:
            raise
        raise ConnectionError(
            f"training stopped: a worker of the cluster failed or cannot be reached "
            f"({first_line(error).rstrip(':')}); the checkpoints in "
            f"{_checkpoint_dir(run_dir)} are intact: resume with --resume"
        ) from None


def _finish(gan, run_dir, chief, manager, history, stopped_early):
    """The run's `TrainingResult`; the chief saves the final generator."""
    final_path = None
    if chief and stopped_early is None:
        final_path = os.path.join(run_dir, "final_generator.keras")
        callbacks_lib.save_generator(gan.generator, final_path)
    best_path = os.path.join(run_dir, "best_generator.keras")
    return TrainingResult(
        run_dir=run_dir,
        history=history,
        best_generator=best_path if os.path.exists(best_path) else None,
        final_generator=final_path,
        checkpoint=manager.latest_checkpoint if chief else None,
        stopped_early=stopped_early,
    )


def _run_info(steps_per_epoch, vgg_used, replicas):
    """What the run resolved from its recipe and machine (not part of the recipe)."""
    return {
        "steps_per_epoch": steps_per_epoch,
        "vgg_weights": vgg_used,
        "replicas": replicas,
        "dtype_policy": keras.config.dtype_policy().name,
        "cpu": cpu_isa(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def _fit_phases(gan, recipe, train_ds, initial_epoch, **fit_kwargs):
    """The content-only warm-up epochs, then the GAN epochs; returns the merged history."""
    history = {}
    phases = ((0.0, recipe.warmup_epochs), (recipe.adversarial_weight, recipe.epochs))
    for adversarial_weight, end_epoch in phases:
        if initial_epoch >= end_epoch:
            continue
        logger.info(
            "Epochs %d-%d: %s",
            initial_epoch + 1,
            end_epoch,
            "GAN" if adversarial_weight > 0 else "content-only warm-up",
        )
        gan.set_adversarial_weight(adversarial_weight)
        result = gan.fit(train_ds, epochs=end_epoch, initial_epoch=initial_epoch, **fit_kwargs)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
        for callback in fit_kwargs.get("callbacks", []):
            if isinstance(callback, keras.callbacks.CSVLogger):
                callback.append = True  # the next phase's fit must not truncate the log
        if gan.stop_training:  # a callback stopped the run (NaN loss, CPU budget)
            break
        initial_epoch = end_epoch
    return history


# ---------------------------------------------------------------- models and checkpoints


def _build_gan(recipe, steps_per_epoch, initialise):
    """The compiled DeblurGAN of the recipe (call under the strategy's scope)."""
    perceptual, vgg_used = None, None
    if recipe.content_weight > 0:
        perceptual, vgg_used = load_perceptual_loss(recipe.vgg_weights)
    generator = build_generator_for(recipe.architecture, recipe.num_filters, recipe.num_res_blocks)
    if recipe.init_weights and initialise:
        _copy_weights(recipe.init_weights, generator)
    gan = DeblurGAN(generator, build_critic(), perceptual)
    total_steps = recipe.epochs * steps_per_epoch
    gan_steps = (recipe.epochs - recipe.warmup_epochs) * steps_per_epoch
    # compile's steps_per_execution stays 1: 4 or 10 mobile steps per call (a graph loop)
    # took the same CPU time per step and 1.37x the wall time on 2 CPU cores.
    gan.compile(
        g_optimizer=_adam(recipe.learning_rate, total_steps),
        d_optimizer=_adam(recipe.learning_rate, max(gan_steps, 1) * recipe.critic_steps),
        gp_weight=recipe.gp_weight,
        content_weight=recipe.content_weight,
        critic_steps=recipe.critic_steps,
        adversarial_weight=recipe.adversarial_weight,
        pixel_weight=recipe.pixel_weight,
        pixel_loss=recipe.pixel_loss,
        log_mse_floor=recipe.log_mse_floor,
        harm_weight=recipe.harm_weight,
        jit_compile=recipe.jit_compile,
    )
    gan.build_optimizers()
    return gan, vgg_used


def build_generator_for(architecture, num_filters=None, num_res_blocks=None):
    """The generator design called `architecture`, with its defaults for None sizes."""
    if architecture not in GENERATOR_BUILDERS:
        raise ValueError(
            f"architecture must be one of {list(GENERATOR_BUILDERS)}. "
            f"Received: architecture={architecture!r}"
        )
    builder = GENERATOR_BUILDERS[architecture]
    sizes = {"num_filters": num_filters, "num_res_blocks": num_res_blocks}
    sizes = {key: value for key, value in sizes.items() if value is not None}
    unknown = sorted(set(sizes) - set(inspect.signature(builder).parameters))
    if unknown:
        raise ValueError(f"architecture {architecture!r} has no {unknown[0]}; leave it unset")
    return builder(**sizes)


def _copy_weights(source, generator):
    """Loads the generator `source` (preset name or `.keras`) into `generator`.

    Same weight shapes: copied in order. Otherwise layer by layer by name, so a
    generator with more residual blocks can start from one with fewer: every
    layer of `source` must exist in `generator` with the same shapes, and the
    new layers keep their initialisation (a new mobile residual block starts
    with its last conv at zero, so the grown generator computes what `source` did).
    """
    from keras_deblur.models.loading import load_generator, weight_shapes

    pretrained = load_generator(source)
    if weight_shapes(pretrained) == weight_shapes(generator):
        generator.set_weights(pretrained.get_weights())
        logger.info("Generator initialised from %s", source)
        return
    targets = {layer.name: layer for layer in generator.layers}
    copied = set()
    for layer in (layer for layer in pretrained.layers if layer.weights):
        target = targets.get(layer.name)
        if target is None or weight_shapes(target) != weight_shapes(layer):
            raise ValueError(
                f"{source}: init_weights do not fit the generator being trained (its layer "
                f"{layer.name!r} has no counterpart of the same shape; check --architecture, "
                "--num_filters and --num_res_blocks)"
            )
        target.set_weights(layer.get_weights())
        copied.add(layer.name)
    new = [layer.name for layer in generator.layers if layer.weights and layer.name not in copied]
    logger.info(
        "Generator initialised from %s; %d new layers keep their initialisation: %s",
        source,
        len(new),
        ", ".join(new),
    )


def _adam(learning_rate, total_steps):
    schedule = ConstantThenLinearDecay(learning_rate, total_steps=total_steps)
    return keras.optimizers.Adam(schedule, beta_1=0.5, beta_2=0.999)


def _checkpoint_manager(checkpoint, run_dir, chief, keep):
    """The manager that saves the run's checkpoints: the chief's, or a worker's throwaway one.

    Every worker of a multi-worker run must save, since a save may run
    collective ops; only the chief's saves go to `run_dir`, the others' to a
    temporary folder that the run removes.
    """
    if chief:
        return tf.train.CheckpointManager(checkpoint, _checkpoint_dir(run_dir), max_to_keep=keep)
    directory = tempfile.mkdtemp(prefix="keras_deblur_worker_")
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1)


def _checkpoint_dir(run_dir):
    return os.path.join(run_dir, "checkpoints")


def _restore(manager, checkpoint, run_dir, chief, gan, epoch):
    """Restores the newest intact checkpoint; a mismatched model is a one-line error.

    Every worker restores the chief's checkpoint from `run_dir`, which must
    therefore be shared storage when a multi-worker run resumes.
    """
    if not chief:
        manager = tf.train.CheckpointManager(checkpoint, _checkpoint_dir(run_dir), max_to_keep=None)
    restored = callbacks_lib.newest_intact_checkpoint(manager)
    try:
        checkpoint.restore(restored).assert_existing_objects_matched()
    except (AssertionError, tf.errors.OpError) as error:
        raise ValueError(
            f"{restored}: does not match the model being resumed "
            f"(different architecture flags?): {str(error).splitlines()[0][:200]}"
        ) from None
    if chief:
        callbacks_lib.remove_partial_saves(manager.directory)
        callbacks_lib.remove_partial_saves(run_dir)
    logger.info(
        "Resumed %s at epoch %d (generator step %d)",
        restored,
        int(epoch.numpy()),
        int(gan.g_optimizer.iterations.numpy()),
    )


def _weights_finite(gan):
    return all(
        bool(np.all(np.isfinite(keras.ops.convert_to_numpy(v))))
        for v in gan.generator.trainable_variables + gan.critic.trainable_variables
    )


# ---------------------------------------------------------------- data


def _check_data(recipe):
    """Fails early, in one line naming the folder or file, on missing or too small data."""
    for name in ("paired_dirs", "sharp_dirs", "val_paired_dirs", "val_sharp_dirs"):
        for path in getattr(recipe, name):
            if path != EMBEDDED and not os.path.isdir(path):
                raise FileNotFoundError(f"{path}: directory not found (--{name})")
    _check_crop_fits(recipe.paired_dirs, recipe.crop_size, paired=True)
    _check_crop_fits(recipe.sharp_dirs, recipe.crop_size, paired=False)


def _check_crop_fits(dirs, crop_size, paired):
    """Fails early, naming the file, if any image is smaller than the crop (headers only)."""
    from keras_deblur.data.images import list_images
    from keras_deblur.data.paired_folders import find_image_pairs, probe_image

    for root in dirs:
        if root == EMBEDDED:
            continue
        paths = [sharp for _, sharp in find_image_pairs(root)] if paired else list_images(root)
        for path in paths:
            height, width = probe_image(path)
            if crop_size > min(height, width):
                raise ValueError(
                    f"{path}: image is {width}x{height}, smaller than crop_size={crop_size}"
                )


def _datasets(recipe, replicas, worker=0, chief=True):
    """Batched training and validation datasets, validation steps, and sample pairs.

    Under a multi-worker strategy, each worker draws its own training crops
    and blur kernels from its own seed, unsharded: sharding by data (what
    tf.data's AUTO falls back to for in-memory paths) would have every
    worker decode and blur the whole global batch and keep its share, N times
    the input pipeline's CPU time, and by files does not apply. The global
    batch is then N independent draws, as on one machine. Validation stays
    sharded by data, so that the workers together score the same crops as one
    machine. Worker 0 keeps the recipe's seed: a one-worker run is unchanged.
    Sample images (chief only) come from the validation crops.
    """
    unsharded = tf.data.Options()
    unsharded.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    train_ds = (
        _training_dataset(recipe, multi_worker.worker_seed(recipe.seed, worker))
        .repeat()
        .batch(recipe.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(unsharded)
    )
    by_data = tf.data.Options()
    by_data.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    val_images = _validation_dataset(recipe)
    val_ds = (
        val_images.batch(replicas, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(by_data)
    )
    validation_steps = recipe.validation_steps or max(_validation_size(recipe) // replicas, 1)
    samples = list(val_images.take(recipe.num_samples).as_numpy_iterator()) if chief else []
    return train_ds, val_ds, validation_steps, samples


def _training_dataset(recipe, seed):
    from keras_deblur.data import datasets

    real = [
        datasets.paired_dataset(root, crop_size=recipe.crop_size, seed=seed)
        for root in recipe.paired_dirs
    ]
    real = _uniform_mix(real, seed)
    synthetic = None
    if recipe.sharp_dirs or not recipe.paired_dirs:
        sharp = photo_paths(recipe.sharp_dirs or [EMBEDDED], "train")
        synthetic = datasets.synthetic_dataset(
            sharp,
            crop_size=recipe.crop_size,
            seed=seed,
            augment=recipe.augment,
            **recipe.blur_options(),
        )
        if recipe.procedural_ratio > 0:
            # Another seed: the same one would draw the photos' kernels again, pair for pair.
            procedural = datasets.procedural_dataset(
                crop_size=recipe.crop_size, seed=seed + 1, **recipe.blur_options()
            )
            synthetic = datasets.mix_procedural(
                synthetic, procedural, procedural_ratio=recipe.procedural_ratio, seed=seed
            )
    if real is not None and synthetic is not None:
        return datasets.mix_datasets(
            synthetic, real, synthetic_ratio=recipe.synthetic_ratio, seed=seed
        )
    return real if real is not None else synthetic


def _validation_dataset(recipe):
    from keras_deblur.data import datasets

    parts = [
        datasets.paired_dataset(root, crop_size=recipe.crop_size, training=False, seed=recipe.seed)
        for root in recipe.val_paired_dirs
    ]
    if recipe.val_sharp_dirs or not recipe.val_paired_dirs:
        sharp = photo_paths(recipe.val_sharp_dirs or [EMBEDDED], "validation")
        parts.append(
            datasets.synthetic_dataset(
                sharp,
                crop_size=recipe.crop_size,
                training=False,
                seed=recipe.seed,
                **recipe.blur_options(),
            )
        )
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return dataset


def _uniform_mix(datasets_list, seed):
    if not datasets_list:
        return None
    if len(datasets_list) == 1:
        return datasets_list[0]
    return tf.data.Dataset.sample_from_datasets(
        [d.repeat() for d in datasets_list], seed=seed, stop_on_empty_dataset=False
    )


def _epoch_size(recipe):
    """Training images per epoch for steps_per_epoch=None: the real pairs, else the sharp photos."""
    from keras_deblur.data.paired_folders import find_image_pairs

    if recipe.paired_dirs:
        return sum(len(find_image_pairs(root)) for root in recipe.paired_dirs)
    return len(photo_paths(recipe.sharp_dirs or [EMBEDDED], "train"))


def _validation_size(recipe):
    from keras_deblur.data.paired_folders import find_image_pairs

    pairs = sum(len(find_image_pairs(root)) for root in recipe.val_paired_dirs)
    if recipe.val_sharp_dirs or not recipe.val_paired_dirs:
        pairs += len(photo_paths(recipe.val_sharp_dirs or [EMBEDDED], "validation"))
    return pairs


# ---------------------------------------------------------------- callbacks


def _callbacks(recipe, run_dir, manager, epoch, chief, resume, samples):
    """The run's callbacks in the order they must run; returns them and the NaN guard."""
    stop_on_nan = callbacks_lib.StopOnNonFiniteLoss()
    scorer = _fixed_validation_scorer(recipe)
    cpu_minutes, wall_minutes = callbacks_lib.spent_minutes(run_dir) if resume else (0.0, 0.0)
    clock = callbacks_lib.TrainingClock(
        cpu_minutes,
        recipe.max_cpu_minutes,
        uncounted=[scorer] if scorer else [],
        initial_wall_minutes=wall_minutes,
    )
    # The clock and the scorer write logs that the saver, the CSV and TensorBoard read.
    callbacks = [stop_on_nan, clock] + ([scorer] if scorer else [])
    callbacks.append(callbacks_lib.CheckpointSaver(manager, epoch))
    if not chief:
        return callbacks, stop_on_nan
    if recipe.snapshots:
        callbacks.append(callbacks_lib.GeneratorSnapshots(os.path.join(run_dir, "snapshots")))
    log_dir = os.path.join(run_dir, "logs")
    tensorboard = _tensorboard_installed()
    callbacks += [
        callbacks_lib.SkippedValidationAsNaN(f"val_{name}" for name in TEST_METRICS),
        callbacks_lib.LearningRateLogger(),
        callbacks_lib.BestGeneratorSaver(
            os.path.join(run_dir, "best_generator.keras"),
            monitor="val_score" if scorer else "val_psnr",
        ),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "training_log.csv"), append=resume),
    ]
    if samples:
        callbacks.append(
            callbacks_lib.SampleImages(
                np.stack([b for b, _ in samples]),
                np.stack([s for _, s in samples]),
                log_dir=log_dir if tensorboard else None,
                image_dir=os.path.join(run_dir, "samples"),
                epochs=validation_epochs(recipe),
            )
        )
    if tensorboard:
        callbacks.append(callbacks_lib.EpochTensorBoard(log_dir))
    return callbacks, stop_on_nan


def validation_epochs(recipe):
    """The 1-based epochs that validate: every `validation_every`-th, and the last.

    Skipping the others saves what validating costs: profiled on the campaign's
    2-core CPU, the Keras validation pass took about 5 s after each epoch.
    """
    every = recipe.validation_every
    return sorted({*range(every, recipe.epochs + 1, every), recipe.epochs})


def _fixed_validation_scorer(recipe):
    """A `ValidationScorer` on the package's fixed validation crops, if the recipe asks."""
    if not recipe.validation_photos:
        return None
    from keras_deblur.validation import load_manifest, load_pairs

    pairs = load_pairs(load_manifest(), list(recipe.validation_photos), whole=False)
    return callbacks_lib.ValidationScorer(pairs, every_n_epochs=recipe.validation_every)


def _tensorboard_installed():
    """tf.summary needs the tensorboard package; without it, logs go to the CSV only."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        logger.warning(
            "tensorboard is not installed: no TensorBoard logs (pip install tensorboard)"
        )
        return False
    return True


# ---------------------------------------------------------------- machine


def default_run_dir(root="runs"):
    """A new folder name under `root` from the current time, e.g. runs/20261125-193000."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(root, stamp)
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = os.path.join(root, f"{stamp}-{suffix}")
    return path


def make_strategy(name="default", tpu_address=""):
    """Returns the `tf.distribute.Strategy` called `name` (see `recipe.STRATEGIES`).

    "multi_worker" reads the cluster from the `TF_CONFIG` environment variable;
    "tpu" connects to `tpu_address` ("" finds the Colab / Cloud TPU).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}")


def resolve_precision(precision, jit_compile=False):
    """The Keras dtype policy for a recipe's `precision`, and why ("auto" asks the machine).

    "auto": mixed bfloat16 on TPUs, and on CPUs where it trains faster
    (`cpu.bfloat16_pays`: AMX, or AVX512-BF16 without XLA; 1.68x per mobile
    step on a 2-core AMD AVX512-BF16 CPU), mixed float16 on GPUs, float32
    elsewhere.

    Args:
        precision: str. "auto" or a Keras dtype policy name.
        jit_compile: bool. Whether the step is XLA-compiled. Defaults to False.

    Returns:
        `(policy name, reason)`.
    """
    if precision != "auto":
        return precision, "asked for"
    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16", "auto: TPU"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16", "auto: GPU"
    if bfloat16_pays(jit_compile=jit_compile):
        return "mixed_bfloat16", f"auto: CPU {cpu_isa()}"
    reason = "with XLA" if jit_compile and "avx512_bf16" in cpu_flags() else "without fast bf16"
    return "float32", f"auto: CPU {cpu_isa()} {reason}"


def load_perceptual_loss(vgg_weights=VGG_AUTO):
    """Builds the perceptual loss; returns it and the weights actually used.

    `"auto"` tries the ImageNet weights and falls back to random features
    (loud warning) when they cannot be loaded, e.g. offline without a cached file.
    """
    if vgg_weights is None:
        return losses.build_perceptual_loss(None), None
    if vgg_weights != VGG_AUTO:
        return losses.build_perceptual_loss(vgg_weights), vgg_weights
    try:
        return losses.build_perceptual_loss("imagenet"), "imagenet"
    except Exception as error:  # noqa: BLE001 - any download failure means "offline"
        logger.warning(
            "Could not load the ImageNet VGG19 weights (%s). Falling back to RANDOM "
            "VGG features: the perceptual loss will not mean what the paper means. Put "
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 in ~/.keras/models/ or "
            "pass --vgg_weights=PATH.",
            str(error).splitlines()[0][:200],
        )
        return losses.build_perceptual_loss(None), None


# ---------------------------------------------------------------- resuming


def load_recipe(run_dir):
    """The recipe a run in `run_dir` was trained with (its config.json)."""
    path = os.path.join(run_dir, RECIPE_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found; is {run_dir} a training run directory?")
    return Recipe.from_json(path)


def resume(run_dir, **changes):
    """Continues the run in `run_dir` with its recipe and `changes` (e.g. epochs=100)."""
    return train(load_recipe(run_dir).replace(**changes), output_dir=run_dir, resume=True)


# ---------------------------------------------------------------- CLI (flags end here)

# Flags that are not recipe fields: which recipe to start from and where the run goes.
RUN_FLAGS = ("preset", "output_dir", "resume")


def define_flags(flag_values=None):
    """Defines --preset, --output_dir, --resume and one flag per recipe field."""
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_enum(
        "preset",
        "quick",
        list(PRESETS),
        "Recipe preset; flags override it.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Run directory (default: a new folder under ./runs).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool("resume", False, "Continue the run in --output_dir.", flag_values=flag_values)
    for field in dataclasses.fields(Recipe):
        _define_field_flag(field, flag_values)
    return flag_values


def _define_field_flag(field, flag_values):
    """One flag named like the field, defaulting to None: only flags set override a recipe.

    The flag of a field that may be None also takes `none`, which sets it to None
    (e.g. `--resume --max_cpu_minutes=none` lifts a run's budget).
    """
    from absl import flags

    help_text = f"[{field.metadata['group']}] {field.metadata['help']}"
    choices = field.metadata["choices"]
    kind = field_type(field.name)
    if choices:
        flags.DEFINE_enum(field.name, None, list(choices), help_text, flag_values=flag_values)
    elif kind is bool:
        flags.DEFINE_bool(field.name, None, help_text, flag_values=flag_values)
    else:
        parser = {
            tuple: flags.ListParser(),
            int: flags.IntegerParser(),
            float: flags.FloatParser(),
        }.get(kind, flags.ArgumentParser())
        if is_optional(field.name):
            parser, help_text = _NoneOr(parser), f"{help_text} `none`: None."
        serializer = flags.CsvListSerializer(",") if kind is tuple else flags.ArgumentSerializer()
        flags.DEFINE(parser, field.name, None, help_text, flag_values, serializer)


class _NoneOr:
    """An absl parser that reads `none` (any case) as None and defers everything else."""

    def __init__(self, parser):
        self._parser = parser

    def parse(self, argument):
        if isinstance(argument, str) and argument.lower() == "none":
            return None
        return self._parser.parse(argument)

    def __getattr__(self, name):  # help text, flag type, XML help: the wrapped parser's
        return getattr(self._parser, name)


def recipe_from_flags(flag_values):
    """The preset's (or the resumed run's) recipe with every flag that was set applied."""
    from keras_deblur.blur import parse_levels

    if flag_values.resume:
        if not flag_values.output_dir:
            raise ValueError("--resume needs --output_dir: the run directory to continue")
        recipe = load_recipe(flag_values.output_dir)
    else:
        recipe = PRESETS[flag_values.preset]
    changes = {}
    for name in FIELD_NAMES:
        if not flag_values[name].present:
            continue
        value = flag_values[name].value
        if name in ("blur_exposures", "blur_fractions") and value is not None:
            value = parse_levels(value, name, allow_uniform=name == "blur_exposures")
        changes[name] = value
    return recipe.replace(**changes)


def _stop_on_signals():
    """Ctrl-C and `kill` (SIGTERM) both stop a run through the path that saves a checkpoint.

    A run started in the background by a non-interactive shell inherits SIGINT
    ignored (no KeyboardInterrupt ever), and SIGTERM would end it unsaved.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv):
    from absl import flags

    del argv
    logging.getLogger().setLevel(logging.INFO)
    _stop_on_signals()
    code = _run_from_flags(flags.FLAGS)
    if multi_worker.in_cluster():
        multi_worker.exit_now(code)
    sys.exit(code)


@reports_errors(ValueError, OSError)
def _run_from_flags(flag_values):
    """Trains from the flags and prints where everything went; the exit status.

    0: done; 1: stopped early (said why); 2: a bad value or file (one line);
    130: interrupted (train() says what it kept).
    """
    recipe = recipe_from_flags(flag_values)
    try:
        result = train(recipe, flag_values.output_dir, resume=flag_values.resume)
    except KeyboardInterrupt as interrupt:
        kept = str(interrupt) or "a checkpoint was saved"
        sys.stderr.write(f"Interrupted; {kept} (resume with --resume).\n")
        return 130
    _print_outputs(result)
    if result.stopped_early:
        sys.stderr.write(f"error: {result.stopped_early}\n")
        return 1
    return 0


def _print_outputs(result):
    scores = result.history.get("val_score") or result.history.get("val_psnr") or [math.nan]
    kind = "val_score" if "val_score" in result.history else "val PSNR"
    best = max((s for s in scores if math.isfinite(s)), default=math.nan)
    print(f"Run directory:      {result.run_dir}")
    print(f"Recipe:             {os.path.join(result.run_dir, RECIPE_FILE)}")
    print(f"Best generator:     {result.best_generator} ({kind} {best:.2f} dB)")
    print(f"Final generator:    {result.final_generator}")
    print(f"Checkpoint:         {result.checkpoint}")
    print(f"Training log (CSV): {os.path.join(result.run_dir, 'training_log.csv')}")
    print(f"TensorBoard:        tensorboard --logdir {os.path.join(result.run_dir, 'logs')}")
    print(f"Sample images:      {os.path.join(result.run_dir, 'samples')}")


if __name__ == "__main__":
    from absl import app

    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    define_flags()
    app.run(main)
