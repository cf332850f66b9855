"""Tests for the Wasserstein terms, the gradient penalty and the VGG19 perceptual loss."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deblur import losses
from keras_deblur.models import build_critic


def _images(shape, seed):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def test_wasserstein_terms_average_each_sample_patch_map():
    real = np.stack([np.full((2, 2, 1), 1.0), np.full((2, 2, 1), 3.0)]).astype("float32")
    fake = np.stack([np.full((2, 2, 1), -1.0), np.full((2, 2, 1), 0.5)]).astype("float32")
    np.testing.assert_allclose(losses.critic_wasserstein_loss(real, fake), [-2.0, -2.5])
    np.testing.assert_allclose(losses.generator_adversarial_loss(fake), [1.0, -0.5])


def test_gradient_penalty_of_a_linear_critic_is_the_weight_norm_penalty():
    weights = _images((1, 8, 8, 3), 0) * 0.1
    norm = np.sqrt(np.sum(weights**2))

    def critic(x, training=None):
        return keras.ops.sum(x * weights, axis=(1, 2, 3))

    real, fake = _images((3, 8, 8, 3), 1), _images((3, 8, 8, 3), 2)
    alpha = np.array([0.0, 0.3, 1.0], "float32").reshape(3, 1, 1, 1)
    penalty = losses.gradient_penalty(critic, real, fake, alpha)
    np.testing.assert_allclose(penalty, [(norm - 1) ** 2] * 3, rtol=1e-5)


def test_gradient_penalty_matches_an_independent_per_sample_computation():
    critic = build_critic(num_filters=4, num_layers=2)
    real, fake = _images((3, 32, 32, 3), 3), _images((3, 32, 32, 3), 4)
    alpha = np.array([0.1, 0.5, 0.9], "float32").reshape(3, 1, 1, 1)
    penalty = keras.ops.convert_to_numpy(losses.gradient_penalty(critic, real, fake, alpha))

    expected = []
    for i in range(3):
        # One sample at a time, the mean patch score's gradient scaled back to the sum.
        x = tf.Variable(alpha[i] * fake[i : i + 1] + (1 - alpha[i]) * real[i : i + 1])
        with tf.GradientTape() as tape:
            score = tf.reduce_sum(critic(x))
        gradient = tape.gradient(score, x).numpy().astype("float64")
        expected.append((np.linalg.norm(gradient.ravel()) - 1.0) ** 2)
    np.testing.assert_allclose(penalty, expected, rtol=1e-4)
    assert len(set(np.round(penalty, 6))) == 3


def test_gradient_penalty_is_differentiable_with_respect_to_the_critic():
    critic = build_critic(num_filters=4, num_layers=2)
    real, fake = _images((2, 32, 32, 3), 5), _images((2, 32, 32, 3), 6)
    alpha = np.full((2, 1, 1, 1), 0.5, "float32")
    with tf.GradientTape() as tape:
        penalty = tf.reduce_sum(losses.gradient_penalty(critic, real, fake, alpha))
    kernels = [v for v in critic.trainable_variables if "kernel" in v.path]
    gradients = tape.gradient(penalty, kernels)
    # Biases drop out of d(score)/d(input); every kernel must get a real gradient.
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)


def test_preprocessing_equals_keras_vgg19_preprocess_input():
    images = _images((2, 8, 8, 3), 7)
    expected = keras.applications.vgg19.preprocess_input((images + 1.0) * 127.5)
    np.testing.assert_allclose(losses.vgg19_preprocess(images), expected, atol=1e-4)


@pytest.fixture(scope="module")
def random_vgg_loss():
    return losses.build_perceptual_loss(weights=None)


def test_features_are_conv3_3_before_the_relu(random_vgg_loss):
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    for layer in random_vgg_loss.extractor.layers:
        if layer.weights:
            vgg.get_layer(layer.name).set_weights(layer.get_weights())
    keras_conv3_3 = keras.Model(vgg.input, vgg.get_layer("block3_conv3").output)

    images = _images((2, 32, 32, 3), 8)
    features = keras.ops.convert_to_numpy(random_vgg_loss.features(images))
    after_relu = keras_conv3_3(keras.applications.vgg19.preprocess_input((images + 1) * 127.5))
    assert features.shape == (2, 8, 8, 256)
    assert features.min() < 0  # a ReLU output never is
    np.testing.assert_allclose(np.maximum(features, 0), after_relu, rtol=1e-4, atol=1e-3)


def test_perceptual_loss_is_per_sample_mse_of_features(random_vgg_loss):
    sharp, fake = _images((2, 32, 32, 3), 9), _images((2, 32, 32, 3), 10)
    value = keras.ops.convert_to_numpy(random_vgg_loss(sharp, fake))
    a = keras.ops.convert_to_numpy(random_vgg_loss.features(sharp))
    b = keras.ops.convert_to_numpy(random_vgg_loss.features(fake))
    np.testing.assert_allclose(value, np.mean((a - b) ** 2, axis=(1, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(random_vgg_loss(sharp, sharp), [0.0, 0.0], atol=1e-6)


def test_perceptual_loss_is_frozen_but_passes_gradients(random_vgg_loss):
    assert random_vgg_loss.trainable_weights == []
    assert len(random_vgg_loss.non_trainable_weights) == 14  # 7 convs x (kernel, bias)
    sharp = _images((1, 16, 16, 3), 11)
    fake = tf.Variable(_images((1, 16, 16, 3), 12))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(random_vgg_loss(sharp, fake))
    assert float(tf.reduce_max(tf.abs(tape.gradient(value, fake)))) > 0


def test_random_weights_log_a_loud_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="keras_deblur.losses"):
        losses.build_perceptual_loss(weights=None)
    assert "RANDOM VGG19 WEIGHTS" in caplog.text


def test_loads_a_local_weights_file(tmp_path, random_vgg_loss):
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = str(tmp_path / "vgg19_notop.weights.h5")
    vgg.save_weights(path)
    loaded = losses.build_perceptual_loss(weights=path)
    kernel = loaded.extractor.get_layer("block3_conv3").get_weights()[0]
    np.testing.assert_array_equal(kernel, vgg.get_layer("block3_conv3").get_weights()[0])


def test_missing_weights_file_is_a_one_line_error(tmp_path):
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5: VGG19 weights file not found"):
        losses.build_perceptual_loss(weights=missing)


def test_pixel_mse_loss_is_per_sample_mean_squared_error():
    sharp = np.zeros((2, 4, 4, 3), "float32")
    fake = np.stack([np.full((4, 4, 3), 0.5, "float32"), np.zeros((4, 4, 3), "float32")])
    np.testing.assert_allclose(losses.pixel_mse_loss(sharp, fake), [0.25, 0.0])


def test_log_mse_loss_is_each_crops_error_in_db_with_a_floor():
    sharp = np.zeros((3, 4, 4, 3), "float32")
    fake = np.stack([np.full((4, 4, 3), v, "float32") for v in (0.1, 0.01, 0.0)])
    loss = np.asarray(losses.log_mse_loss(sharp, fake))
    expected = 10 * np.log10(np.array([0.01, 1e-4, 0.0]) + losses.LOG_MSE_FLOOR)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # every crop counts in dB: halving any crop's error lowers the loss by the same 3 dB
    halved = np.asarray(losses.log_mse_loss(sharp, fake / np.sqrt(2), floor=1e-12))
    full = np.asarray(losses.log_mse_loss(sharp, fake, floor=1e-12))
    np.testing.assert_allclose((full - halved)[:2], [3.0103, 3.0103], atol=1e-3)


def test_harm_loss_charges_only_the_db_lost_against_the_input():
    sharp = _images((3, 8, 8, 3), 0) * 0.5
    blurred = sharp + 0.1 * _images((3, 8, 8, 3), 1)
    better = sharp + 0.05 * _images((3, 8, 8, 3), 1)
    assert np.all(np.asarray(losses.harm_loss(sharp, better, blurred)) == 0)
    worse = sharp + 0.2 * _images((3, 8, 8, 3), 1)  # twice the error: 4x the MSE, ~6 dB
    harm = np.asarray(losses.harm_loss(sharp, worse, blurred, floor=1e-12))
    np.testing.assert_allclose(harm, 10 * np.log10(4.0), rtol=1e-4)
    # An unblurred input: any change is harm, measured from the floor.
    changed = sharp + 1e-2
    harm = np.asarray(losses.harm_loss(sharp, changed, sharp))
    expected = 10 * np.log10((1e-4 + losses.HARM_FLOOR) / losses.HARM_FLOOR)
    np.testing.assert_allclose(harm, expected, rtol=1e-3)
