"""Train DeblurGAN: `python -m keras_deblur.train` and the `train()` library function.

With no flags, trains the paper's generator, critic and losses on the photos
embedded in scikit-image (blurred on the fly) with a short schedule that ends
in a few minutes on a 2-core CPU, and prints where everything went:

    python -m keras_deblur.train

The paper's schedule (300 epochs: 150 at 1e-4, then 150 decaying to 0) on GoPro:

    python -m keras_deblur.train --preset=paper --paired_dirs=GOPRO_Large/train \\
        --sharp_dirs=extra_sharp_photos --val_paired_dirs=GOPRO_Large/test

Resume an interrupted run (Ctrl-C saves a checkpoint first):

    python -m keras_deblur.train --resume --output_dir=runs/20260101-120000

VGG19 weights: `--vgg_weights=auto` (default) uses the ImageNet weights,
from Keras' cache (~/.keras/models) or downloaded; where neither works (no
internet) it falls back to random VGG features with a loud warning, so the
default command still runs offline. Use `--vgg_weights=imagenet` to make a
missing download an error, or pass the path of
`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`.
"""

import csv
import dataclasses
import datetime
import json
import logging
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_deblur import callbacks as callbacks_lib
from keras_deblur import losses
from keras_deblur.data.embedded import EMBEDDED, photo_paths
from keras_deblur.data.images import set_max_pixels
from keras_deblur.gan import DeblurGAN
from keras_deblur.losses import PIXEL_LOSSES
from keras_deblur.models import GENERATOR_BUILDERS, build_critic
from keras_deblur.schedules import ConstantThenLinearDecay

logger = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
ARCHITECTURES = tuple(GENERATOR_BUILDERS)
VGG_AUTO = "auto"

# Values `train()` uses unless told otherwise: the paper's model and losses with a
# schedule short enough for a 2-core CPU.
QUICK_SCHEDULE = {"epochs": 3, "steps_per_epoch": 10, "crop_size": 128, "batch_size": 1}
# The paper: GoPro, 256x256 crops, batch 1, 150 + 150 epochs, one epoch = one
# pass over the training pairs (steps_per_epoch=None).
PRESETS = {
    "quick": dict(QUICK_SCHEDULE),
    # XLA: 8.5 s instead of 13.7 s per step on 2 CPU cores (bench/bench_train.py);
    # its one-off compilation (~45 s) only pays off over a long run.
    "paper": {
        "epochs": 300,
        "steps_per_epoch": None,
        "crop_size": 256,
        "batch_size": 1,
        "jit_compile": True,
    },
    # The shipped mobile model's recipe (keras_deblur/pretrained/MODEL_CARD.md):
    # a content-only warm-up, then DeblurGAN's WGAN-GP with the paper's weights
    # (adversarial 1 : content 100), the content being a pixel MSE loss since
    # the ImageNet VGG19 weights cannot be assumed. Blur from almost none to
    # long shakes, so that sharp content is left alone.
    "mobile": {
        "architecture": "mobile",
        "epochs": 61,
        "warmup_epochs": 60,
        "steps_per_epoch": 50,
        "crop_size": 128,
        "batch_size": 8,
        "learning_rate": 3e-4,
        "content_weight": 0.0,
        "pixel_weight": 100.0,
        "vgg_weights": None,
        "blur_exposures": (None, None, None, 0.01, 0.007, 0.005, 0.003),
        "blur_fractions": (0.1, 0.5, 1.0, 1.0),
        "unblurred_ratio": 0.2,
        # 0.60 instead of 0.75 s per warm-up step (batch 8 of 128x128, 2 CPU cores).
        "jit_compile": True,
    },
}


@dataclasses.dataclass
class TrainingResult:
    """What `train()` produced.

    Attributes:
        run_dir: str. Folder holding everything below.
        history: dict. Per-epoch logs (`keras.callbacks.History.history`).
        best_generator: str or None. `.keras` generator with the best validation PSNR.
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
    """Returns the `tf.distribute.Strategy` called `name` (see `STRATEGIES`).

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


def load_perceptual_loss(vgg_weights=VGG_AUTO):
    """Builds the perceptual loss; returns it and the weights actually used.

    `"auto"` tries the ImageNet weights and falls back to random features
    (loud warning) when they cannot be loaded, e.g. offline without a cached file.
    """
    if vgg_weights in (None, "none", "None"):
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


def _check_dirs(dirs, flag):
    for path in dirs:
        if path != EMBEDDED and not os.path.isdir(path):
            raise FileNotFoundError(f"{path}: directory not found (--{flag})")


def _check_crop_fits(dirs, crop_size, paired):
    """Fails early, naming the file, if any image is smaller than the crop (headers only)."""
    from keras_deblur.data.datasets import find_image_pairs, probe_image
    from keras_deblur.data.images import list_images

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


def _training_dataset(paired_dirs, sharp_dirs, synthetic_ratio, crop_size, seed, blur_options):
    from keras_deblur.data import datasets

    real = [datasets.paired_dataset(root, crop_size=crop_size, seed=seed) for root in paired_dirs]
    real = _uniform_mix(real, seed)
    synthetic = None
    if sharp_dirs or not paired_dirs:
        sharp = photo_paths(sharp_dirs or [EMBEDDED], "train")
        synthetic = datasets.synthetic_dataset(
            sharp, crop_size=crop_size, seed=seed, **blur_options
        )
    if real is not None and synthetic is not None:
        return datasets.mix_datasets(synthetic, real, synthetic_ratio=synthetic_ratio, seed=seed)
    return real if real is not None else synthetic


def _validation_dataset(paired_dirs, sharp_dirs, crop_size, seed, blur_options):
    from keras_deblur.data import datasets

    parts = [
        datasets.paired_dataset(root, crop_size=crop_size, training=False, seed=seed)
        for root in paired_dirs
    ]
    if sharp_dirs or not paired_dirs:
        sharp = photo_paths(sharp_dirs or [EMBEDDED], "validation")
        parts.append(
            datasets.synthetic_dataset(
                sharp, crop_size=crop_size, training=False, seed=seed, **blur_options
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


def _epoch_size(paired_dirs, sharp_dirs):
    """Training images per epoch for steps_per_epoch=None: the real pairs, else the sharp photos."""
    from keras_deblur.data.datasets import find_image_pairs

    if paired_dirs:
        return sum(len(find_image_pairs(root)) for root in paired_dirs)
    return len(photo_paths(sharp_dirs or [EMBEDDED], "train"))


def _validation_size(paired_dirs, sharp_dirs):
    from keras_deblur.data.datasets import find_image_pairs

    pairs = sum(len(find_image_pairs(root)) for root in paired_dirs)
    if sharp_dirs or not paired_dirs:
        pairs += len(photo_paths(sharp_dirs or [EMBEDDED], "validation"))
    return pairs


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)


def _mixed_precision_policy():
    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    logger.warning("--mixed_precision without a GPU/TPU: using mixed_bfloat16 (slow on most CPUs)")
    return "mixed_bfloat16"


def train(
    output_dir: str | None = None,
    paired_dirs: list[str] | tuple = (),
    sharp_dirs: list[str] | tuple = (),
    val_paired_dirs: list[str] | tuple = (),
    val_sharp_dirs: list[str] | tuple = (),
    synthetic_ratio: float = 2 / 3,
    crop_size: int = QUICK_SCHEDULE["crop_size"],
    batch_size: int = QUICK_SCHEDULE["batch_size"],
    epochs: int = QUICK_SCHEDULE["epochs"],
    steps_per_epoch: int | None = QUICK_SCHEDULE["steps_per_epoch"],
    validation_steps: int | None = None,
    critic_steps: int = 5,
    learning_rate: float = 1e-4,
    gp_weight: float = 10.0,
    content_weight: float = 100.0,
    adversarial_weight: float = 1.0,
    pixel_weight: float = 0.0,
    pixel_loss: str = "mse",
    max_cpu_minutes: float | None = None,
    snapshots: bool = False,
    warmup_epochs: int = 0,
    vgg_weights: str | None = VGG_AUTO,
    architecture: str = "resnet",
    num_filters: int | None = None,
    num_res_blocks: int | None = None,
    init_weights: str | None = None,
    blur_exposures: list | tuple | None = None,
    blur_fractions: list | tuple | None = None,
    unblurred_ratio: float = 0.0,
    resume: bool = False,
    strategy: str = "default",
    tpu_address: str = "",
    mixed_precision: bool = False,
    jit_compile: bool = False,
    seed: int = 0,
    keep_checkpoints: int = 3,
    num_samples: int = 3,
    verbose: str | int = "auto",
) -> TrainingResult:
    """Trains DeblurGAN and writes everything under one run directory.

    Data: `paired_dirs` (GoPro layout `<scene>/blur|sharp/*.png`), `sharp_dirs`
    (photos blurred on the fly by random-trajectory motion blur; `"embedded"`
    names the photos embedded in scikit-image), mixed `synthetic_ratio`
    synthetic : rest real when both are given; neither means the embedded
    photos. Validation likewise from `val_*` (embedded validation photos when
    empty), centre-cropped to `crop_size`.

    Phases: the first `warmup_epochs` train the generator alone on the content
    terms (no critic); the rest are DeblurGAN's WGAN-GP training.

    Run directory (`output_dir`, default a new folder under ./runs/):
    `config.json` (the resolved arguments), `checkpoints/` (last
    `keep_checkpoints`, resumable), `best_generator.keras` (best validation
    PSNR), `final_generator.keras`, `training_log.csv`, `logs/` (TensorBoard
    scalars and before/after images), `samples/epoch_NNN.png`.

    Args:
        output_dir: str or None. Run directory; must exist and hold a
            checkpoint when `resume` is True.
        paired_dirs, sharp_dirs, val_paired_dirs, val_sharp_dirs: lists of folders.
        synthetic_ratio: float in [0, 1]. Share of synthetic pairs. Defaults to 2/3.
        crop_size: int. Training crop (multiple of 4). Defaults to 128 (quick).
        batch_size: int. Global batch size (all replicas). Defaults to 1.
        epochs: int. Defaults to 3 (quick); the paper uses 300.
        steps_per_epoch: int or None. Generator steps per epoch; None = one
            pass over the training images. Defaults to 10 (quick).
        validation_steps: int or None. None = the whole validation set.
        critic_steps: int. Critic updates per generator update. Defaults to 5.
        learning_rate: float. Adam rate of both networks before the decay. Defaults to 1e-4.
        gp_weight: float. Gradient penalty weight. Defaults to 10.
        content_weight: float. Perceptual loss weight. Defaults to 100.
        adversarial_weight: float. Weight of `-D(fake)` after the warm-up. Defaults to 1.
        pixel_weight: float. Pixel loss weight. Defaults to 0 (the paper).
        pixel_loss: "mse" or "log_mse" (each crop's error in dB, see
            `losses.log_mse_loss`). Defaults to "mse".
        max_cpu_minutes: float or None. Stop after the epoch that spends this
            much process CPU time (a fair budget for design studies). Defaults
            to None.
        snapshots: bool. Also save the generator after every epoch under
            `snapshots/`, for learning curves scored afterwards. Defaults to False.
        warmup_epochs: int. Content-only epochs before the GAN starts. Defaults to 0.
        vgg_weights: "auto", "imagenet", a `.h5` path, or None. Defaults to
            "auto"; not loaded when `content_weight` is 0.
        architecture: "resnet" (the paper's generator) or "mobile"
            (`build_mobile_generator`). Defaults to "resnet".
        num_filters, num_res_blocks: generator size; None takes the
            architecture's defaults (the paper's 64, 9 for "resnet").
        init_weights: str or None. Start the generator from these weights
            instead of random ones (fine-tuning): a pretrained preset name such
            as "mobile" or a `.keras` generator of the same architecture and
            size. Ignored when resuming (the checkpoint holds the weights).
        blur_exposures, blur_fractions: sequences picked from uniformly for each
            synthetic sample (`None` in `blur_exposures` is the trajectory's own
            `0.1 * U(0, 1)`), or None for the reference dataset script's mix.
        unblurred_ratio: float in [0, 1). Share of synthetic pairs left
            unblurred, so the generator learns to leave sharp content alone.
            Defaults to 0.
        resume: bool. Continue the run in `output_dir` from its latest checkpoint.
        strategy: one of `STRATEGIES`. Defaults to "default" (one device).
        tpu_address: str. For strategy="tpu". Defaults to "" (auto-detect).
        mixed_precision: bool. float16 (GPU) / bfloat16 (TPU) compute. Defaults to False.
        jit_compile: bool. XLA-compile the train step. Defaults to False.
        seed: int. Seeds weights, data and sampling. Defaults to 0.
        keep_checkpoints: int. Checkpoints kept. Defaults to 3.
        num_samples: int. Validation images in the before/after strips. Defaults to 3.
        verbose: passed to `keras.Model.fit`.

    Returns:
        `TrainingResult`. Ctrl-C saves a checkpoint, then re-raises KeyboardInterrupt.
    """
    config = {
        key: value
        for key, value in locals().items()
        if key not in ("resume", "verbose", "output_dir")
    }
    _validate(config, resume, output_dir)
    run_dir = os.path.abspath(output_dir or default_run_dir())
    os.makedirs(run_dir, exist_ok=True)
    keras.utils.set_random_seed(seed)

    previous_policy = keras.config.dtype_policy()
    dist = make_strategy(strategy, tpu_address)
    if mixed_precision:
        keras.config.set_dtype_policy(_mixed_precision_policy())
    try:
        return _train_in_run_dir(config, run_dir, resume, dist, verbose)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _validate(config, resume, output_dir):
    for key in ("crop_size", "batch_size", "epochs", "critic_steps", "keep_checkpoints"):
        if int(config[key]) < 1:
            raise ValueError(f"{key} must be >= 1. Received: {key}={config[key]}")
    if config["crop_size"] % 4:
        raise ValueError(
            f"crop_size must be a multiple of 4. Received: crop_size={config['crop_size']}"
        )
    if not 0 <= config["warmup_epochs"] <= config["epochs"]:
        raise ValueError(
            f"warmup_epochs must be in [0, epochs={config['epochs']}]. "
            f"Received: warmup_epochs={config['warmup_epochs']}"
        )
    if config["architecture"] not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {ARCHITECTURES}. "
            f"Received: architecture={config['architecture']!r}"
        )
    if config["steps_per_epoch"] is not None and config["steps_per_epoch"] < 1:
        raise ValueError(f"steps_per_epoch must be >= 1. Received: {config['steps_per_epoch']}")
    if not 0.0 <= config["unblurred_ratio"] < 1.0:
        raise ValueError(
            "unblurred_ratio must be in [0, 1). "
            f"Received: unblurred_ratio={config['unblurred_ratio']}"
        )
    if not 0.0 <= config["synthetic_ratio"] <= 1.0:
        raise ValueError(
            f"synthetic_ratio must be in [0, 1]. Received: {config['synthetic_ratio']}"
        )
    if config["pixel_loss"] not in PIXEL_LOSSES:
        raise ValueError(
            f"pixel_loss must be one of {sorted(PIXEL_LOSSES)}. "
            f"Received: pixel_loss={config['pixel_loss']!r}"
        )
    if config["max_cpu_minutes"] is not None and config["max_cpu_minutes"] <= 0:
        raise ValueError(
            f"max_cpu_minutes must be > 0. Received: max_cpu_minutes={config['max_cpu_minutes']}"
        )
    if config["strategy"] not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: {config['strategy']!r}")
    for key in ("paired_dirs", "sharp_dirs", "val_paired_dirs", "val_sharp_dirs"):
        _check_dirs(config[key], key)
    _check_crop_fits(list(config["paired_dirs"]), config["crop_size"], paired=True)
    _check_crop_fits(list(config["sharp_dirs"]), config["crop_size"], paired=False)
    if resume:
        if not output_dir:
            raise ValueError("resume needs output_dir: the run directory to continue")
        if not callbacks_lib.has_checkpoint(os.path.join(output_dir, "checkpoints")):
            raise FileNotFoundError(f"{output_dir}: no checkpoint to resume from")


def _train_in_run_dir(config, run_dir, resume, strategy, verbose):
    replicas = strategy.num_replicas_in_sync
    if config["batch_size"] % replicas:
        raise ValueError(
            f"batch_size must be a multiple of the {replicas} replicas. "
            f"Received: batch_size={config['batch_size']}"
        )
    steps_per_epoch = config["steps_per_epoch"] or max(
        _epoch_size(config["paired_dirs"], config["sharp_dirs"]) // config["batch_size"], 1
    )
    total_steps = config["epochs"] * steps_per_epoch
    chief = _is_chief(strategy)

    gan_steps = (config["epochs"] - config["warmup_epochs"]) * steps_per_epoch
    with strategy.scope():
        perceptual, vgg_used = None, None
        if config["content_weight"] > 0:
            perceptual, vgg_used = load_perceptual_loss(config["vgg_weights"])
        generator = build_generator_for(
            config["architecture"], config["num_filters"], config["num_res_blocks"]
        )
        if config["init_weights"] and not resume:
            _copy_weights(config["init_weights"], generator)
        critic = build_critic()
        gan = DeblurGAN(generator, critic, perceptual)
        gan.compile(
            g_optimizer=_adam(config["learning_rate"], total_steps),
            d_optimizer=_adam(config["learning_rate"], max(gan_steps, 1) * config["critic_steps"]),
            gp_weight=config["gp_weight"],
            content_weight=config["content_weight"],
            critic_steps=config["critic_steps"],
            adversarial_weight=config["adversarial_weight"],
            pixel_weight=config["pixel_weight"],
            pixel_loss=config["pixel_loss"],
            jit_compile=config["jit_compile"],
        )
        gan.build_optimizers()
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = callbacks_lib.make_checkpoint(gan, epoch)

    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    if not chief:
        # Every worker must save (the save is collective); only the chief's copy is kept.
        checkpoint_dir = os.path.join(
            run_dir, "workers", f"worker_{strategy.cluster_resolver.task_id}"
        )
    manager = tf.train.CheckpointManager(
        checkpoint, checkpoint_dir, max_to_keep=config["keep_checkpoints"]
    )
    if resume:
        restored = callbacks_lib.newest_intact_checkpoint(manager)
        try:
            checkpoint.restore(restored).assert_existing_objects_matched()
        except AssertionError as error:
            raise ValueError(
                f"{restored}: does not match the model being resumed "
                f"(different architecture flags?): {str(error).splitlines()[0][:200]}"
            ) from None
        callbacks_lib.remove_partial_saves(checkpoint_dir)
        if chief:
            callbacks_lib.remove_partial_saves(run_dir)
        logger.info(
            "Resumed %s at epoch %d (generator step %d)",
            restored,
            int(epoch.numpy()),
            int(gan.g_optimizer.iterations.numpy()),
        )

    resolved = dict(config, vgg_weights=vgg_used, steps_per_epoch=steps_per_epoch)
    resolved.update(
        paired_dirs=list(config["paired_dirs"]),
        sharp_dirs=list(config["sharp_dirs"]),
        val_paired_dirs=list(config["val_paired_dirs"]),
        val_sharp_dirs=list(config["val_sharp_dirs"]),
        output_dir=run_dir,
        replicas=replicas,
        dtype_policy=keras.config.dtype_policy().name,
    )
    if chief:  # atomically: a kill mid-write must not leave a config that --resume cannot read
        callbacks_lib.write_json_atomically(os.path.join(run_dir, "config.json"), resolved)

    blur_options = _blur_options(config)
    train_ds = (
        _training_dataset(
            config["paired_dirs"],
            config["sharp_dirs"],
            config["synthetic_ratio"],
            config["crop_size"],
            config["seed"],
            blur_options,
        )
        .repeat()
        .batch(config["batch_size"], drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_images = _validation_dataset(
        config["val_paired_dirs"],
        config["val_sharp_dirs"],
        config["crop_size"],
        config["seed"],
        blur_options,
    )
    val_ds = val_images.batch(replicas, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    validation_steps = config["validation_steps"] or max(
        _validation_size(config["val_paired_dirs"], config["val_sharp_dirs"]) // replicas, 1
    )
    samples = list(val_images.take(config["num_samples"]).as_numpy_iterator())

    stop_on_nan = callbacks_lib.StopOnNonFiniteLoss()
    best_path = os.path.join(run_dir, "best_generator.keras")
    log_dir = os.path.join(run_dir, "logs")
    clock = callbacks_lib.TrainingClock(
        _spent_cpu_minutes(run_dir) if resume else 0.0, config["max_cpu_minutes"]
    )
    callbacks = [stop_on_nan, clock, callbacks_lib.CheckpointSaver(manager, epoch)]
    if chief and config["snapshots"]:
        callbacks.append(callbacks_lib.GeneratorSnapshots(os.path.join(run_dir, "snapshots")))
    if chief:
        callbacks += [
            callbacks_lib.LearningRateLogger(),
            callbacks_lib.BestGeneratorSaver(best_path),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "training_log.csv"), append=resume),
        ]
        if samples:
            callbacks.append(
                callbacks_lib.SampleImages(
                    np.stack([b for b, _ in samples]),
                    np.stack([s for _, s in samples]),
                    log_dir=log_dir if _tensorboard_installed() else None,
                    image_dir=os.path.join(run_dir, "samples"),
                )
            )
        if _tensorboard_installed():
            callbacks.append(keras.callbacks.TensorBoard(log_dir, write_graph=False))
    logger.info(
        "Training %d epochs x %d steps (batch %d, crop %d, %d replica(s)) into %s",
        config["epochs"],
        steps_per_epoch,
        config["batch_size"],
        config["crop_size"],
        replicas,
        run_dir,
    )
    try:
        history = _fit_phases(
            gan,
            config,
            train_ds,
            int(epoch.numpy()),
            steps_per_epoch=steps_per_epoch,
            validation_data=val_ds,
            validation_steps=validation_steps,
            callbacks=callbacks,
            verbose=verbose,
        )
    except KeyboardInterrupt:
        if _weights_finite(gan):
            path = manager.save()
            logger.warning("Interrupted: saved checkpoint %s; resume with --resume", path)
        raise

    final_path = None
    if chief and stop_on_nan.message is None:
        final_path = os.path.join(run_dir, "final_generator.keras")
        callbacks_lib._save_keras_atomically(gan.generator, final_path)
    return TrainingResult(
        run_dir=run_dir,
        history=history,
        best_generator=best_path if os.path.exists(best_path) else None,
        final_generator=final_path,
        checkpoint=manager.latest_checkpoint,
        stopped_early=stop_on_nan.message,
    )


def _fit_phases(gan, config, train_ds, initial_epoch, **fit_kwargs):
    """The content-only warm-up epochs, then the GAN epochs; returns the merged history."""
    history = {}
    phases = (
        (0.0, config["warmup_epochs"]),
        (config["adversarial_weight"], config["epochs"]),
    )
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
        if gan.stop_training:  # a callback stopped the run (e.g. a NaN loss)
            break
        initial_epoch = end_epoch
    return history


def build_generator_for(architecture, num_filters=None, num_res_blocks=None):
    """`build_generator` or `build_mobile_generator`, with that builder's defaults for None."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {ARCHITECTURES}. Received: architecture={architecture!r}"
        )
    builder = GENERATOR_BUILDERS[architecture]
    sizes = {"num_filters": num_filters, "num_res_blocks": num_res_blocks}
    return builder(**{key: value for key, value in sizes.items() if value is not None})


def _copy_weights(source, generator):
    """Loads the generator `source` (preset name or `.keras`) into `generator`, same shapes."""
    from keras_deblur.models.loading import load_generator

    pretrained = load_generator(source)
    shapes = [tuple(w.shape) for w in pretrained.weights]
    expected = [tuple(w.shape) for w in generator.weights]
    if shapes != expected:
        raise ValueError(
            f"{source}: init_weights do not fit the generator being trained "
            f"({len(shapes)} weight tensors, expected {len(expected)}; check --architecture, "
            "--num_filters and --num_res_blocks)"
        )
    generator.set_weights(pretrained.get_weights())
    logger.info("Generator initialised from %s", source)


def _blur_options(config):
    options = {}
    if config["blur_exposures"]:
        options["exposure"] = tuple(config["blur_exposures"])
    if config["blur_fractions"]:
        options["fraction"] = tuple(config["blur_fractions"])
    if config["unblurred_ratio"]:
        options["unblurred_ratio"] = float(config["unblurred_ratio"])
    return options


def _spent_cpu_minutes(run_dir):
    """The last `cpu_minutes` in the run's training log, so a resumed run keeps counting."""
    path = os.path.join(run_dir, "training_log.csv")
    try:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        return float(rows[-1]["cpu_minutes"]) if rows else 0.0
    except (OSError, KeyError, ValueError):
        return 0.0


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


def _adam(learning_rate, total_steps):
    schedule = ConstantThenLinearDecay(learning_rate, total_steps=total_steps)
    return keras.optimizers.Adam(schedule, beta_1=0.5, beta_2=0.999)


def _weights_finite(gan):
    return all(
        bool(np.all(np.isfinite(keras.ops.convert_to_numpy(v))))
        for v in gan.generator.trainable_variables + gan.critic.trainable_variables
    )


def resume_config(run_dir):
    """The arguments `train()` was last called with for `run_dir` (its config.json)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not found; is {run_dir} a training run directory?")
    try:
        with open(path) as file:
            config = json.load(file)
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    allowed = set(train.__code__.co_varnames[: train.__code__.co_argcount])
    allowed -= {"output_dir", "resume", "verbose"}
    return {key: value for key, value in config.items() if key in allowed}


def resume(run_dir, **overrides):
    """Continues the run in `run_dir` with its saved arguments and `overrides` (e.g. epochs)."""
    return train(**dict(resume_config(run_dir), **overrides), output_dir=run_dir, resume=True)


# ---------------------------------------------------------------- CLI (flags end here)


def _define_flags():
    from absl import flags

    flags.DEFINE_enum("preset", "quick", sorted(PRESETS), "Schedule preset; flags override it.")
    flags.DEFINE_string("output_dir", None, "Run directory (default: a new folder under ./runs).")
    flags.DEFINE_list("paired_dirs", [], "GoPro-layout folders of blurred/sharp pairs.")
    flags.DEFINE_list("sharp_dirs", [], "Folders of sharp photos blurred on the fly.")
    flags.DEFINE_list("val_paired_dirs", [], "Validation pairs (default: embedded photos).")
    flags.DEFINE_list("val_sharp_dirs", [], "Validation sharp photos, blurred with a fixed seed.")
    flags.DEFINE_float("synthetic_ratio", 2 / 3, "Share of synthetic pairs when mixing.")
    flags.DEFINE_integer("crop_size", None, "Training crop (multiple of 4).")
    flags.DEFINE_integer("batch_size", None, "Global batch size.")
    flags.DEFINE_integer("epochs", None, "Epochs (paper: 300 = 150 constant + 150 decay).")
    flags.DEFINE_integer("steps_per_epoch", None, "Generator steps per epoch.")
    flags.DEFINE_integer("validation_steps", None, "Validation batches (default: all).")
    flags.DEFINE_integer("critic_steps", 5, "Critic updates per generator update.")
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate before the decay.")
    flags.DEFINE_float("gp_weight", 10.0, "Gradient penalty weight.")
    flags.DEFINE_float("content_weight", 100.0, "Perceptual loss weight (0: no VGG19).")
    flags.DEFINE_float("adversarial_weight", 1.0, "Weight of -D(fake) in the generator loss.")
    flags.DEFINE_float("pixel_weight", 0.0, "Pixel loss weight (not in the paper).")
    flags.DEFINE_enum("pixel_loss", "mse", sorted(PIXEL_LOSSES), "Pixel loss: mse or log_mse.")
    flags.DEFINE_float("max_cpu_minutes", None, "Stop after this much process CPU time.")
    flags.DEFINE_bool("snapshots", False, "Save the generator after every epoch.")
    flags.DEFINE_integer("warmup_epochs", 0, "Content-only epochs (no critic) before the GAN.")
    flags.DEFINE_string("vgg_weights", VGG_AUTO, "auto | imagenet | none | path to .h5 weights.")
    flags.DEFINE_enum("architecture", "resnet", list(ARCHITECTURES), "Generator: paper or mobile.")
    flags.DEFINE_integer("num_filters", None, "Generator width (default: the architecture's).")
    flags.DEFINE_integer("num_res_blocks", None, "Residual blocks (default: the architecture's).")
    flags.DEFINE_string(
        "init_weights", None, "Fine-tune: start the generator from a preset name or .keras."
    )
    flags.DEFINE_list(
        "blur_exposures",
        None,
        "Synthetic blur exposures picked uniformly; 'uniform' draws the trajectory's own "
        "0.1*U(0,1) (default: the reference dataset script's mix).",
    )
    flags.DEFINE_list("blur_fractions", None, "Synthetic blur exposure fractions in (0, 1].")
    flags.DEFINE_float("unblurred_ratio", 0.0, "Share of synthetic pairs left unblurred.")
    flags.DEFINE_bool("resume", False, "Continue the run in --output_dir.")
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy.")
    flags.DEFINE_string("tpu_address", "", "TPU address for --strategy=tpu.")
    flags.DEFINE_bool("mixed_precision", False, "float16 (GPU) / bfloat16 (TPU) compute.")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints to keep.")
    flags.DEFINE_integer("num_samples", 3, "Before/after sample images per epoch.")
    flags.DEFINE_integer(
        "max_pixels", None, "Skip photos whose header claims more pixels (default: 120 M)."
    )
    return flags.FLAGS


_TRAIN_FLAGS = (
    "paired_dirs sharp_dirs val_paired_dirs val_sharp_dirs synthetic_ratio crop_size batch_size "
    "epochs steps_per_epoch validation_steps critic_steps learning_rate gp_weight content_weight "
    "adversarial_weight pixel_weight pixel_loss max_cpu_minutes snapshots warmup_epochs "
    "vgg_weights architecture num_filters "
    "num_res_blocks init_weights blur_exposures blur_fractions unblurred_ratio strategy "
    "tpu_address mixed_precision jit_compile seed keep_checkpoints num_samples"
).split()


def _parse_blur_lists(kwargs, flag_values):
    """--blur_exposures/--blur_fractions as floats; 'uniform' is the trajectory's own exposure."""
    from keras_deblur.blur import parse_levels

    for name in ("blur_exposures", "blur_fractions"):
        if flag_values[name].present:
            allow_uniform = name == "blur_exposures"
            kwargs[name] = parse_levels(flag_values[name].value, name, allow_uniform)


def _kwargs_from_flags(flag_values):
    """Preset values, then the defaults of the other flags, then whatever was set explicitly."""
    if flag_values.resume:
        if not flag_values.output_dir:
            raise ValueError("--resume needs --output_dir: the run directory to continue")
        kwargs = resume_config(flag_values.output_dir)
        kwargs.update(
            {name: flag_values[name].value for name in _TRAIN_FLAGS if flag_values[name].present}
        )
        _parse_blur_lists(kwargs, flag_values)
        return dict(kwargs, output_dir=flag_values.output_dir, resume=True)
    kwargs = dict(PRESETS[flag_values.preset])
    for name in _TRAIN_FLAGS:
        value = flag_values[name].value
        if flag_values[name].present or (name not in kwargs and value is not None):
            kwargs[name] = value
    if kwargs.get("vgg_weights") in ("none", "None"):
        kwargs["vgg_weights"] = None
    _parse_blur_lists(kwargs, flag_values)
    return dict(kwargs, output_dir=flag_values.output_dir)


def main(argv):
    from absl import flags

    del argv
    flag_values = flags.FLAGS
    logging.getLogger().setLevel(logging.INFO)
    try:
        if flag_values.max_pixels is not None:
            set_max_pixels(flag_values.max_pixels)
        kwargs = _kwargs_from_flags(flag_values)
        result = train(**kwargs)
    except (ValueError, OSError) as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted; a checkpoint was saved (resume with --resume).\n")
        sys.exit(130)
    best = result.history.get("val_psnr") or [math.nan]
    print(f"Run directory:      {result.run_dir}")
    print(f"Config:             {os.path.join(result.run_dir, 'config.json')}")
    print(f"Best generator:     {result.best_generator} (val PSNR {max(best):.2f} dB)")
    print(f"Final generator:    {result.final_generator}")
    print(f"Checkpoint:         {result.checkpoint}")
    print(f"Training log (CSV): {os.path.join(result.run_dir, 'training_log.csv')}")
    print(f"TensorBoard:        tensorboard --logdir {os.path.join(result.run_dir, 'logs')}")
    print(f"Sample images:      {os.path.join(result.run_dir, 'samples')}")
    if result.stopped_early:
        sys.stderr.write(f"error: {result.stopped_early}\n")
        sys.exit(1)


if __name__ == "__main__":
    from absl import app

    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    _define_flags()
    app.run(main)
