import keras
import numpy as np
import pytest

from keras_deblur.layers import InstanceNormalization
from keras_deblur.models import build_generator


def test_default_generator_has_the_reference_parameter_count():
    assert build_generator().count_params() == 11_378_179


def test_full_size_generator_runs_at_64x64_and_keeps_range():
    generator = build_generator()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    y = np.asarray(generator(x, training=False))
    assert y.shape == (1, 64, 64, 3)
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert not np.allclose(y, x), "an untrained generator still changes its input"


@pytest.mark.parametrize("size", [(8, 8), (36, 52), (64, 100)])
def test_generator_keeps_any_multiple_of_four(size):
    generator = build_generator(num_res_blocks=1, num_filters=8)
    y = generator(np.zeros((2, *size, 3), "float32"))
    assert tuple(y.shape) == (2, *size, 3)


def test_every_conv_has_a_bias_and_norms_have_no_affine_weights():
    generator = build_generator(num_res_blocks=2)
    convs = [
        layer
        for layer in generator.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
    ]
    assert len(convs) == 1 + 2 + 2 * 2 + 2 + 1
    assert all(conv.use_bias for conv in convs)
    norms = [layer for layer in generator.layers if isinstance(layer, InstanceNormalization)]
    assert len(norms) == 3 + 2 * 2 + 2
    assert all(not norm.weights for norm in norms)


def test_stride_two_convs_pad_every_side_like_pytorch():
    generator = build_generator(num_res_blocks=0)
    pad = generator.get_layer("down_1_pad")
    assert pad.padding == ((1, 1), (1, 1))
    # One pixel of zeros on every side and a valid 3x3 stride-2 conv maps
    # 16 -> 8, with the first window centred on pixel (0, 0) as in PyTorch.
    conv = generator.get_layer("down_1_conv")
    assert conv.padding == "valid" and conv.strides == (2, 2)


def test_transposed_conv_matches_pytorch_output_grid():
    """PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) output
    at row r is sum over input rows i and kernel rows k with r = 2 i + k - 1.
    Check our layer pair against that formula on a 1-channel example."""
    generator = build_generator(num_res_blocks=0, num_filters=1)
    conv = generator.get_layer("up_2_conv")
    crop = generator.get_layer("up_2_crop")
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 3, 1, 2)).astype("float32")
    conv.set_weights([kernel, np.zeros(1, "float32")])
    x = rng.normal(size=(1, 5, 4, 2)).astype("float32")
    ours = np.asarray(crop(conv(x)))[0, :, :, 0]
    expected = np.zeros((10, 8), "float32")
    for i in range(5):
        for j in range(4):
            for ki in range(3):
                for kj in range(3):
                    r, c = 2 * i + ki - 1, 2 * j + kj - 1
                    if 0 <= r < 10 and 0 <= c < 8:
                        expected[r, c] += x[0, i, j] @ kernel[ki, kj, 0]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_dropout_is_off_at_inference_unless_reference_behaviour_is_asked():
    x = np.random.default_rng(4).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    deterministic = build_generator(num_res_blocks=2, num_filters=8)
    np.testing.assert_array_equal(deterministic(x), deterministic(x))
    reference = build_generator(num_res_blocks=2, num_filters=8, dropout_at_inference=True)
    assert not np.allclose(reference(x), reference(x))


def test_without_global_skip_output_is_the_tanh_branch():
    generator = build_generator(num_res_blocks=1, num_filters=8, global_skip=False)
    assert generator.layers[-1].name == "tail_tanh"


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dropout_rate"):
        build_generator(dropout_rate=1.0)
    with pytest.raises(ValueError, match="num_res_blocks"):
        build_generator(num_res_blocks=-1)
