"""Tests for the DeblurGAN model: gradient penalty, train_step, learning, resume, distribution."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deblur import losses
from keras_deblur.callbacks import make_checkpoint
from keras_deblur.gan import DeblurGAN
from keras_deblur.models import build_critic, build_generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small_gan(
    critic_steps=2,
    learning_rate=1e-4,
    dropout_rate=0.5,
    gp_weight=10.0,
    optimizer=None,
    **compile_kwargs,
):
    gan = DeblurGAN(
        build_generator(num_filters=8, num_res_blocks=1, dropout_rate=dropout_rate),
        build_critic(num_filters=8, num_layers=2),
        losses.build_perceptual_loss(weights=None),
    )
    optimizer = optimizer or (lambda: keras.optimizers.Adam(learning_rate, beta_1=0.5))
    gan.compile(
        g_optimizer=optimizer(),
        d_optimizer=optimizer(),
        critic_steps=critic_steps,
        gp_weight=gp_weight,
        **compile_kwargs,
    )
    return gan


def _pair(batch=1, size=32, seed=0):
    """A smooth sharp image and a box-blurred copy, both in [-1, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (batch, size // 8, size // 8, 3)).astype("float32")
    sharp = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    blurred = tf.nn.avg_pool2d(
        np.pad(sharp, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect"), 5, 1, "VALID"
    ).numpy()
    return blurred, sharp


def test_gradient_penalty_draws_one_uniform_alpha_per_sample():
    gan = _small_gan()

    # For D(x) = sum(x^2) / 2, grad D = x; with real = 0 the interpolate is
    # alpha * fake, so sqrt(penalty) + 1 = alpha * ||fake|| recovers alpha.
    def quadratic(x, training=None):
        return keras.ops.sum(keras.ops.square(x), axis=(1, 2, 3)) / 2

    gan.critic = quadratic
    fake = np.full((64, 4, 4, 3), 10.0, "float32")  # ||fake|| = 10 * sqrt(48) >> 1
    penalty = keras.ops.convert_to_numpy(gan.gradient_penalty(np.zeros_like(fake), fake))
    alpha = (np.sqrt(penalty) + 1.0) / (10.0 * np.sqrt(48.0))
    assert np.all((alpha >= 0) & (alpha <= 1))
    assert len(np.unique(np.round(alpha, 5))) == 64
    assert 0.3 < alpha.mean() < 0.7 and alpha.std() > 0.2  # U[0,1] has std 0.29


def test_train_step_runs_critic_steps_critic_updates_and_one_generator_update():
    gan = _small_gan(critic_steps=3)
    blurred, sharp = _pair(batch=2)
    gan.build_optimizers()
    before_g = [v.numpy().copy() for v in gan.generator.trainable_variables]
    before_d = [v.numpy().copy() for v in gan.critic.trainable_variables]
    dataset = tf.data.Dataset.from_tensor_slices((blurred, sharp)).batch(2).repeat()
    history = gan.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    assert int(gan.g_optimizer.iterations) == 2
    assert int(gan.d_optimizer.iterations) == 6
    changed_g = [
        not np.array_equal(b, v.numpy())
        for b, v in zip(before_g, gan.generator.trainable_variables, strict=True)
    ]
    changed_d = [
        not np.array_equal(b, v.numpy())
        for b, v in zip(before_d, gan.critic.trainable_variables, strict=True)
    ]
    assert sum(changed_g) > len(changed_g) // 2 and sum(changed_d) > len(changed_d) // 2
    for key in (
        "critic_loss",
        "generator_loss",
        "gradient_penalty",
        "perceptual_loss",
        "wasserstein_distance",
        "psnr",
    ):
        assert np.isfinite(history.history[key][0]), key


def test_metrics_are_trackers_and_test_step_reports_psnr_ssim():
    gan = _small_gan()
    assert {m.name for m in gan.metrics} >= {
        "critic_loss",
        "generator_loss",
        "gradient_penalty",
        "perceptual_loss",
        "wasserstein_distance",
        "psnr",
        "ssim",
    }
    blurred, sharp = _pair(batch=2)
    results = gan.evaluate(blurred, sharp, batch_size=2, return_dict=True, verbose=0)
    from keras_deblur.metrics_tf import psnr_tf

    # A traced call, as in test_step: an eager one runs other kernels (grappler may fuse a
    # conv with its bias add), and each uint8 level that flips on some CPU moves the PSNR
    # by ~4e-6 relative; scoring the batch's mean MSE instead would be off by 3e-4.
    expected = float(np.mean(psnr_tf(sharp, gan.generator.predict_on_batch(blurred))))
    assert results["psnr"] == pytest.approx(expected, rel=1e-5)
    assert 0 < results["ssim"] <= 1


def test_small_generator_really_learns_one_pair():
    gan = _small_gan(critic_steps=1, learning_rate=1e-3)
    blurred, sharp = _pair(batch=1, size=32, seed=1)
    data = tf.data.Dataset.from_tensors((blurred, sharp)).repeat()
    first = gan.evaluate(blurred, sharp, return_dict=True, verbose=0)["psnr"]
    start_perceptual = float(gan.perceptual_loss(sharp, gan.generator(blurred, training=True))[0])
    history = gan.fit(data, steps_per_epoch=25, epochs=4, verbose=0).history
    last = gan.evaluate(blurred, sharp, return_dict=True, verbose=0)["psnr"]
    assert history["perceptual_loss"][-1] < 0.5 * start_perceptual
    assert last > first + 2.0, (first, last)


def test_checkpoint_resume_restores_identical_optimizer_state(tmp_path):
    blurred, sharp = _pair(batch=1)
    data = tf.data.Dataset.from_tensors((blurred, sharp)).repeat()
    # Dropout masks come from per-layer seeds that are not checkpointed (they
    # need not be); without dropout the continuation must match exactly.
    gan = _small_gan(critic_steps=2, dropout_rate=0.0)
    gan.build_optimizers()
    epoch = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(make_checkpoint(gan, epoch), str(tmp_path), 2)
    gan.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    epoch.assign(1)
    manager.save()

    restored = _small_gan(critic_steps=2, dropout_rate=0.0)
    restored.build_optimizers()
    restored_epoch = tf.Variable(0, dtype=tf.int64)
    make_checkpoint(restored, restored_epoch).restore(
        manager.latest_checkpoint
    ).assert_existing_objects_matched()
    assert int(restored_epoch) == 1
    assert int(restored.g_optimizer.iterations) == 3 and int(restored.d_optimizer.iterations) == 6
    for original, copy in (
        (gan.g_optimizer, restored.g_optimizer),
        (gan.d_optimizer, restored.d_optimizer),
    ):
        assert len(original.variables) == len(copy.variables)
        for a, b in zip(original.variables, copy.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(gan.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    # Both continue identically from the restored state.
    gan.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    restored.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
    assert int(restored.g_optimizer.iterations) == 4
    for a, b in zip(gan.generator.weights, restored.generator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_compile_rejects_zero_critic_steps():
    with pytest.raises(ValueError, match="critic_steps must be >= 1"):
        _small_gan(critic_steps=0)


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    sys.path.insert(0, {repo!r})
    from tests.test_gan import _pair, _small_gan

    def one_step(strategy):
        keras.utils.set_random_seed(7)
        with strategy.scope():
            # No dropout and no penalty: the only randomness left would differ per
            # replica. SGD, unlike Adam, shows a wrongly scaled gradient.
            gan = _small_gan(
                critic_steps=2, dropout_rate=0.0, gp_weight=0.0,
                optimizer=lambda: keras.optimizers.SGD(0.05),
            )
        blurred, sharp = _pair(batch=2)
        data = tf.data.Dataset.from_tensor_slices((blurred, sharp)).batch(2).repeat()
        gan.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
        return gan

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    distributed = one_step(mirrored)
    single = one_step(tf.distribute.get_strategy())
    assert int(distributed.d_optimizer.iterations.numpy()) == 2
    assert int(distributed.g_optimizer.iterations.numpy()) == 1
    # Kernels only: biases in front of an InstanceNorm get float-noise gradients
    # that Adam blows up to +-lr whatever the reduction.
    pairs = [
        (a, b)
        for a, b in zip(distributed.trainable_weights, single.trainable_weights, strict=True)
        if "kernel" in a.path
    ]
    assert len(pairs) > 10
    for a, b in pairs:
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=2e-5, err_msg=a.path)
    print("MIRRORED_OK")
    """
)


def test_a_step_under_mirrored_strategy_equals_the_single_device_step():
    # Logical devices must be configured before TensorFlow starts: a fresh process.
    script = _MIRRORED_SCRIPT.format(repo=REPO)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert "MIRRORED_OK" in result.stdout, result.stderr[-3000:]


def test_psnr_means_leave_out_a_pair_where_either_image_is_identical():
    from keras_deblur.gan import _update_psnr_pair

    output, source = keras.metrics.Mean(), keras.metrics.Mean()
    output_psnr = np.array([30.0, 45.0, np.inf, 32.0], "float32")
    input_psnr = np.array([28.0, np.inf, np.inf, 31.0], "float32")  # the 2nd was unblurred
    _update_psnr_pair(output, source, output_psnr, input_psnr)
    assert float(output.result()) == 31.0
    assert float(source.result()) == 29.5


def test_compile_passes_the_log_mse_floor_to_the_pixel_loss():
    sharp = np.zeros((1, 4, 4, 3), "float32")
    fake = np.full((1, 4, 4, 3), 0.01, "float32")  # MSE 1e-4
    for floor in (1e-4, 1e-2):
        gan = _small_gan(pixel_loss="log_mse", log_mse_floor=floor, pixel_weight=1.0)
        expected = 10 * np.log10(1e-4 + floor)
        np.testing.assert_allclose(np.asarray(gan.pixel_loss(sharp, fake)), [expected], rtol=1e-5)


def test_harm_weight_adds_the_db_each_crop_lost_to_the_generator_loss():
    sharp = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 16, 16, 3)).astype("float32")
    # Unblurred pairs: any change the generator makes is harm.
    unblurred = tf.data.Dataset.from_tensor_slices((sharp, sharp)).batch(2)
    for harm_weight in (0.0, 2.0):
        gan = _small_gan(
            content_weight=0.0,
            adversarial_weight=0.0,
            pixel_weight=1.0,
            harm_weight=harm_weight,
            dropout_rate=0.0,
        )
        # Measured before the step changes the weights.
        fake = gan.generator(sharp)
        harm = np.asarray(losses.harm_loss(sharp, fake, sharp)).mean()
        expected = np.asarray(losses.pixel_mse_loss(sharp, fake)).mean() + harm_weight * harm
        history = gan.fit(unblurred, epochs=1, verbose=0)
        assert harm > 1.0  # an untrained generator changes its input
        np.testing.assert_allclose(history.history["generator_loss"][0], expected, rtol=1e-3)
