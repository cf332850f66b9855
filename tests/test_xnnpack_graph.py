"""The XNNPACK rewrite of the generator computes the same function as the Keras layers."""

import keras
import numpy as np
import pytest

from export.xnnpack_graph import (
    ParityConv2DTranspose,
    SlicedReflectionPadding2D,
    WinogradConv2D,
    rewrite_for_xnnpack,
)
from keras_deblur import build_generator
from keras_deblur.layers import ReflectionPadding2D


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


@pytest.mark.parametrize("padding", [1, 3, ((2, 1), (0, 3))])
def test_sliced_reflection_padding_equals_reflect_pad(padding):
    images = _random((2, 5, 7, 3), 0)
    expected = ReflectionPadding2D(padding)(images)
    np.testing.assert_array_equal(SlicedReflectionPadding2D(padding)(images), expected)


@pytest.mark.parametrize("size", [(5, 7), (4, 4), (1, 3)])
def test_parity_transposed_conv_equals_keras_transposed_conv_and_crop(size):
    images = _random((2, *size, 6), 1)
    transposed = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="valid")
    transposed.build(images.shape)
    transposed.set_weights([_random((3, 3, 4, 6), 2), _random((4,), 3)])
    expected = keras.layers.Cropping2D(((1, 0), (1, 0)))(transposed(images))
    parity = ParityConv2DTranspose(4)
    parity.build(images.shape)
    parity.set_weights(transposed.get_weights())
    outputs = parity(images)
    assert outputs.shape == expected.shape == (2, 2 * size[0], 2 * size[1], 4)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


@pytest.mark.parametrize("size", [(10, 12), (9, 12), (6, 6)])
def test_winograd_conv_equals_the_direct_conv(size):
    # (9, 12): an odd output height takes the direct-conv fallback.
    images = _random((2, *size, 5), 4)
    conv = keras.layers.Conv2D(7, 3, padding="valid")
    conv.build(images.shape)
    conv.set_weights([_random((3, 3, 5, 7), 5), _random((7,), 6)])
    winograd = WinogradConv2D(7)
    winograd.build(images.shape)
    winograd.set_weights(conv.get_weights())
    expected = conv(images)
    outputs = winograd(images)
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, atol=2e-5)


@pytest.mark.parametrize("winograd", [False, True])
def test_rewrite_of_the_full_generator_computes_the_same_images(winograd):
    keras.utils.set_random_seed(0)
    generator = build_generator()
    # Non-zero biases, so that a bias the rewrite dropped would show.
    for layer in generator.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, _random(bias.shape, 7) * 0.05])
    rewritten = rewrite_for_xnnpack(generator, winograd=winograd)
    swapped = [type(layer).__name__ for layer in rewritten.layers]
    assert swapped.count("SlicedReflectionPadding2D") == 20
    assert swapped.count("ParityConv2DTranspose") == 2
    assert swapped.count("WinogradConv2D") == (18 if winograd else 0)
    assert rewritten.count_params() == generator.count_params() == 11_378_179
    images = np.random.default_rng(8).uniform(-1, 1, (1, 32, 40, 3)).astype("float32")
    np.testing.assert_allclose(
        rewritten.predict_on_batch(images), generator.predict_on_batch(images), atol=1e-4
    )
    # The original model is untouched.
    assert "ReflectionPadding2D" in [type(layer).__name__ for layer in generator.layers]
