"""The U-Net candidate of the mobile design study: size, identity at init, any multiple of 4."""

import functools

import keras
import numpy as np
import pytest
import test_mobile_generator

from export.convert import convert_generator, list_operators
from keras_deblur.inference import deblur
from keras_deblur.models import GENERATOR_BUILDERS, build_mobile_unet_generator
from keras_deblur.models.complexity import count_macs
from keras_deblur.train import build_generator_for

SMALL = {"widths": (8, 16, 16), "blocks": (1, 1, 1)}
_away_from_identity = functools.partial(test_mobile_generator._away_from_identity, offset=0.02)


def test_unet_has_its_documented_size_within_the_phone_budget():
    generator = build_mobile_unet_generator()
    assert generator.count_params() == 1_936_140
    assert round(count_macs(generator) / 1e9, 2) == 2.11
    assert GENERATOR_BUILDERS["mobile_unet"] is build_mobile_unet_generator


def test_untrained_unet_is_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(build_mobile_unet_generator(**SMALL)(x)), x)


@pytest.mark.parametrize("size", [(4, 4), (36, 52), (44, 20)])
def test_unet_keeps_any_multiple_of_four_and_the_range(size):
    """Odd sides at 1/8 and 1/16 resolution come back cropped to the skip's size."""
    generator = _away_from_identity(build_mobile_unet_generator(**SMALL))
    y = np.asarray(generator(np.random.default_rng(1).uniform(-1, 1, (2, *size, 3))))
    assert y.shape == (2, *size, 3)
    assert -1.0 <= y.min() and y.max() <= 1.0


def test_unet_round_trips_through_safe_mode_keras_and_deblurs_odd_sizes(tmp_path):
    generator = _away_from_identity(build_mobile_unet_generator(**SMALL))
    path = str(tmp_path / "unet.keras")
    generator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 20, 28, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), generator(x), atol=1e-6)
    image = np.random.default_rng(4).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert deblur(loaded, image).shape == image.shape


def test_unet_converts_to_builtin_tflite_ops():
    generator = _away_from_identity(build_mobile_unet_generator(**SMALL))
    operators = set(list_operators(convert_generator(generator, "fp32", (36, 52))))
    assert not [op for op in operators if op.startswith(("CUSTOM", "UNKNOWN", "FLEX"))]
    assert {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE"} <= operators


def test_unet_rejects_bad_sizes_and_the_recipe_sizes_it_has_not():
    with pytest.raises(ValueError, match="widths and blocks must be 3 ints"):
        build_mobile_unet_generator(widths=(8, 16))
    with pytest.raises(ValueError, match="architecture 'mobile_unet' has no num_filters; leave"):
        build_generator_for("mobile_unet", num_filters=32)
