import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deblur.layers import (
    AlwaysOnDropout,
    BilinearUpsampling2D,
    DepthToSpace,
    GlobalSkip,
    InstanceNormalization,
    ReflectionPadding2D,
    SpaceToDepth,
)


def _roundtrip(layer):
    config = keras.saving.serialize_keras_object(layer)
    return keras.saving.deserialize_keras_object(config, safe_mode=True)


def test_instance_norm_equals_group_norm_with_one_channel_per_group():
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 9, 13, 6)).astype("float32")
    ours = InstanceNormalization()(x)
    reference = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False, scale=False)(
        x
    )
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_instance_norm_uses_each_image_statistics_in_inference_too():
    layer = InstanceNormalization()
    x = np.random.default_rng(1).normal(0, 1, (1, 8, 8, 2)).astype("float32")
    shifted = x * 5.0 + 10.0
    # No running statistics: a shifted, scaled image normalises to the same output.
    np.testing.assert_allclose(layer(x, training=False), layer(shifted, training=False), atol=1e-4)
    out = np.asarray(layer(shifted))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=(1, 2)), 1.0, atol=1e-3)


def test_instance_norm_has_no_weights_by_default_and_learns_affine_on_request():
    plain = InstanceNormalization()
    plain.build((None, 4, 4, 5))
    assert plain.weights == []
    affine = InstanceNormalization(affine=True)
    affine.build((None, 4, 4, 5))
    assert [tuple(w.shape) for w in affine.weights] == [(5,), (5,)]
    x = np.random.default_rng(2).normal(0, 1, (1, 4, 4, 5)).astype("float32")
    affine.beta.assign(np.full(5, 2.0, "float32"))
    np.testing.assert_allclose(np.asarray(affine(x)).mean(axis=(1, 2)), 2.0, atol=1e-5)


def test_reflection_padding_matches_numpy_reflect():
    x = np.arange(2 * 5 * 6 * 3, dtype="float32").reshape(2, 5, 6, 3)
    layer = ReflectionPadding2D(((1, 2), (3, 0)))
    expected = np.pad(x, ((0, 0), (1, 2), (3, 0), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(layer(x), expected)
    assert layer.compute_output_shape((2, 5, 6, 3)) == (2, 8, 9, 3)
    assert layer.compute_output_shape((None, None, None, 3)) == (None, None, None, 3)


def test_reflection_padding_rejects_malformed_padding():
    with pytest.raises(ValueError, match="padding"):
        ReflectionPadding2D((1, 2, 3))


@pytest.mark.parametrize(
    "layer",
    [
        InstanceNormalization(epsilon=1e-3, affine=True),
        ReflectionPadding2D(((2, 1), (0, 3))),
        AlwaysOnDropout(0.3),
        GlobalSkip(),
        SpaceToDepth(4),
        DepthToSpace(2),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_survive_safe_mode_serialization(layer):
    restored = _roundtrip(layer)
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()


def test_always_on_dropout_drops_in_inference():
    x = np.ones((1, 32, 32, 4), "float32")
    out = np.asarray(AlwaysOnDropout(0.5)(x, training=False))
    assert 0.3 < (out == 0).mean() < 0.7
    np.testing.assert_array_equal(keras.layers.Dropout(0.5)(x, training=False), x)


def test_global_skip_adds_and_clips_to_unit_range():
    image = np.array([[[[0.5, -0.5, 0.9]]]], "float32")
    residual = np.array([[[[0.25, -0.75, 0.3]]]], "float32")
    np.testing.assert_allclose(GlobalSkip()([image, residual]), [[[[0.75, -1.0, 1.0]]]])


@pytest.mark.parametrize("shape", [(2, 5, 7, 4), (1, 1, 3, 2), (1, 16, 16, 8)])
def test_bilinear_upsampling_equals_keras_upsampling(shape):
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    expected = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    np.testing.assert_allclose(BilinearUpsampling2D()(x), expected, atol=1e-6)


def test_bilinear_upsampling_runs_on_sizes_unknown_at_trace_time():
    layer = BilinearUpsampling2D()
    traced = tf.function(layer.call, input_signature=[tf.TensorSpec((1, None, None, 3))])
    x = np.random.default_rng(1).uniform(-1, 1, (1, 6, 9, 3)).astype("float32")
    expected = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    np.testing.assert_allclose(traced(x), expected, atol=1e-6)
    assert layer.compute_output_shape((1, None, 9, 3)) == (1, None, 18, 3)


def test_space_to_depth_keeps_every_pixel_and_depth_to_space_inverts_it():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 12, 3)).astype("float32")
    packed = np.asarray(SpaceToDepth(4)(x))
    assert packed.shape == (2, 2, 3, 48)
    # the first output pixel holds exactly the top-left 4x4 patch
    np.testing.assert_array_equal(np.sort(packed[0, 0, 0]), np.sort(x[0, :4, :4].ravel()))
    np.testing.assert_array_equal(np.asarray(DepthToSpace(4)(packed)), x)
    assert SpaceToDepth(4).compute_output_shape((None, 8, None, 3)) == (None, 2, None, 48)
    assert DepthToSpace(4).compute_output_shape((None, 2, 3, 48)) == (None, 8, 12, 3)
