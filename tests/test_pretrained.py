"""The pretrained generator shipped in the package: it loads by name and it deblurs.

These tests fail for random or untrained weights: the shipped file must be the
trained mobile generator, and it must beat the blurred input on a photo it
never saw, blurred by our synthetic motion blur.
"""

import os

import numpy as np
import pytest
import skimage.data

from keras_deblur import load_generator
from keras_deblur.data.motion_blur import synthesize_blur
from keras_deblur.inference import deblur
from keras_deblur.metrics import psnr
from keras_deblur.models import build_mobile_generator
from keras_deblur.pretrained import MODEL_CARD, PRESETS, preset_path


@pytest.fixture(scope="module")
def pretrained():
    return load_generator("mobile")


def test_every_preset_ships_in_the_package_small_with_its_model_card():
    for name in PRESETS:
        assert os.path.getsize(preset_path(name)) <= 10 * 1024 * 1024
    with open(MODEL_CARD, encoding="utf-8") as file:
        card = file.read()
    for section in ("## Architecture", "## Training data", "## Training", "## Validation"):
        assert section in card, section


def test_mobile_preset_is_the_mobile_architecture_loaded_in_safe_mode(pretrained):
    # load_generator reads .keras files with safe_mode=True.
    assert pretrained.name == "mobile_deblur_generator"
    assert pretrained.count_params() == build_mobile_generator().count_params() == 663_280


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="'mobile'"):
        preset_path("no-such-model")


def test_pretrained_beats_the_blurred_input_on_a_photo_it_never_saw(pretrained):
    sharp = skimage.data.chelsea()  # a validation photo: never trained on
    gains = []
    for seed in range(3):
        blurred, _ = synthesize_blur(sharp, np.random.default_rng(seed), exposure=0.005, fraction=1)
        gains.append(psnr(sharp, deblur(pretrained, blurred)) - psnr(sharp, blurred))
    # The shipped model measured +0.13, +0.31 and +0.22 dB here; an untrained (identity)
    # mobile generator scores 0 and a random one far below.
    assert min(gains) > 0.0 and np.mean(gains) > 0.1, gains
