import keras
import numpy as np
import pytest

from keras_deblur.inference import deblur
from keras_deblur.models import build_critic, build_generator, build_mobile_v1_generator
from keras_deblur.models.complexity import count_macs


def test_mobile_v1_generator_has_its_documented_size():
    assert build_mobile_v1_generator().count_params() == 487_227


def test_mobile_v1_generator_meets_the_phone_budget_and_full_generator_count_is_the_papers():
    mobile, full = count_macs(build_mobile_v1_generator()), count_macs(build_generator())
    assert round(full / 1e9, 1) == 49.6
    assert round(mobile / 1e9, 2) == 2.60
    assert mobile <= full / 10


def test_count_macs_counts_every_conv_kind():
    inputs = keras.Input((None, None, 4))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)  # 16*16 * 3*3*4*8
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 16*16 * 3*3*8
    x = keras.layers.Conv2DTranspose(2, 2, strides=2)(x)  # 16*16 * 2*2*8*2
    model = keras.Model(inputs, x)
    assert count_macs(model, 16, 16) == 256 * (288 + 72 + 64)
    assert count_macs(build_critic(), 64, 64) > 0


def test_untrained_mobile_v1_generator_is_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 3)).astype("float32")
    y = np.asarray(build_mobile_v1_generator()(x))
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("size", [(8, 8), (36, 52), (64, 100)])
def test_mobile_v1_generator_keeps_any_multiple_of_four_and_range(size):
    generator = build_mobile_v1_generator(num_filters=16, num_res_blocks=1)
    for layer in generator.layers:  # leave the identity so the range check means something
        if layer.weights:
            layer.set_weights([w + 0.3 for w in layer.get_weights()])
    y = np.asarray(generator(np.random.default_rng(1).uniform(-1, 1, (2, *size, 3))))
    assert y.shape == (2, *size, 3)
    assert -1.0 <= y.min() and y.max() <= 1.0


def test_mobile_v1_generator_has_no_normalisation_and_builtin_friendly_layers():
    kinds = {type(layer).__name__ for layer in build_mobile_v1_generator().layers}
    assert kinds == {
        "InputLayer",
        "Conv2D",
        "Add",
        "BilinearUpsampling2D",
        "Activation",
        "GlobalSkip",
    }


def test_mobile_v1_generator_round_trips_through_safe_mode_keras(tmp_path):
    generator = build_mobile_v1_generator(num_filters=16, num_res_blocks=2)
    for layer in generator.layers:
        if layer.weights:
            layer.set_weights([np.full_like(w, 0.01) for w in layer.get_weights()])
    path = str(tmp_path / "mobile_v1.keras")
    generator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 16, 24, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), generator(x), atol=1e-6)


def test_mobile_v1_generator_deblurs_odd_sizes_through_inference():
    image = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = deblur(build_mobile_v1_generator(num_filters=16, num_res_blocks=1), image)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)  # the untrained model is the identity


def test_mobile_v1_generator_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiple of 8"):
        build_mobile_v1_generator(num_filters=12)
