import keras
import numpy as np
import pytest

from keras_deblur.inference import deblur
from keras_deblur.models import GENERATOR_BUILDERS, build_mobile_generator
from keras_deblur.models.complexity import count_macs


def _away_from_identity(generator, offset=0.05):
    for layer in generator.layers:
        if layer.weights:
            layer.set_weights([w + offset for w in layer.get_weights()])
    return generator


def test_mobile_generator_has_its_documented_size_and_fits_the_phone_budget():
    with_attention, plain = (
        build_mobile_generator(),
        build_mobile_generator(channel_attention=False),
    )
    assert with_attention.count_params() == 663_280
    assert plain.count_params() == 646_256
    assert round(count_macs(with_attention) / 1e9, 2) == 2.64
    assert count_macs(with_attention) <= 5e9 and with_attention.count_params() <= 2e6


def test_untrained_mobile_generator_is_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(build_mobile_generator()(x)), x)


@pytest.mark.parametrize("size", [(4, 4), (36, 52)])
def test_mobile_generator_keeps_any_multiple_of_four_and_range(size):
    generator = _away_from_identity(build_mobile_generator(num_filters=16, num_res_blocks=1))
    y = np.asarray(generator(np.random.default_rng(1).uniform(-1, 1, (2, *size, 3))))
    assert y.shape == (2, *size, 3)
    assert -1.0 <= y.min() and y.max() <= 1.0


def test_channel_attention_makes_each_pixel_depend_on_the_whole_image():
    """With attention a far-away change moves a pixel's output; without it, it cannot."""
    x = np.random.default_rng(2).uniform(-1, 1, (1, 256, 256, 3)).astype("float32")
    far = x.copy()
    far[:, 200:, 200:] = 0.0  # beyond the receptive field of the pixel (8, 8)
    for attention, moved in ((True, True), (False, False)):
        generator = build_mobile_generator(16, 1, channel_attention=attention)
        generator = _away_from_identity(generator, 0.02)
        difference = np.abs(np.asarray(generator(x) - generator(far)))[0, :16, :16].max()
        assert (difference > 1e-6) == moved


def test_mobile_generator_round_trips_through_safe_mode_keras(tmp_path):
    generator = _away_from_identity(build_mobile_generator(num_filters=16, num_res_blocks=2))
    path = str(tmp_path / "mobile.keras")
    generator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 16, 24, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), generator(x), atol=1e-6)


def test_mobile_generator_deblurs_odd_sizes_through_inference():
    image = np.random.default_rng(4).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = deblur(build_mobile_generator(num_filters=16, num_res_blocks=1), image)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


def test_generator_builders_name_every_design():
    designs = {"resnet", "mobile", "mobile_plain", "mobile_v1", "mobile_unet"}
    assert set(GENERATOR_BUILDERS) == designs
    plain = GENERATOR_BUILDERS["mobile_plain"](num_filters=16, num_res_blocks=1)
    assert not any("attention" in layer.name for layer in plain.layers)


def test_mobile_generator_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiple of 4"):
        build_mobile_generator(num_filters=10)
