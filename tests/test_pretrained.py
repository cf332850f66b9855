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
from keras_deblur.data.depth_of_field import photo_depth_of_field
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
    gains = {}
    for exposure in (None, 0.005):  # short and long shakes
        for seed in range(3):
            rng = np.random.default_rng(seed)
            blurred, _ = synthesize_blur(sharp, rng, exposure=exposure, fraction=1)
            gain = psnr(sharp, deblur(pretrained, blurred)) - psnr(sharp, blurred)
            gains.setdefault(exposure, []).append(gain)
    # The shipped model (stage 31) measured +0.94, +0.76, +0.91 dB (short) and +0.82, +0.87,
    # +0.99 dB (long) here; an untrained (identity) generator scores 0 and a
    # random one far below.
    assert min(gains[None]) > 0.15 and min(gains[0.005]) > 0.03, gains


def test_pretrained_leaves_a_sharp_photo_alone(pretrained):
    sharp = skimage.data.chelsea()
    # Measured: 72.0 dB from the sharp photo (the identity: infinite; mobile_v1: 40.0 dB).
    assert psnr(sharp, deblur(pretrained, sharp)) > 45.0  # v1 fails this


def _soft_chelsea(kind, seed):
    """A validation photo (never trained on) given shallow depth of field, not shaken."""
    rng = np.random.default_rng(seed)
    return photo_depth_of_field(rng, skimage.data.chelsea(), max_radius=10.0, kind=kind)


@pytest.mark.parametrize(
    "kind, seed",
    [
        ("plane", 0),
        ("subject", 0),
        pytest.param(
            "plane",
            3,
            marks=pytest.mark.xfail(
                strict=True, reason="the no-harm gate is not met yet: 42.0 dB (issue 27)"
            ),
        ),
    ],
)
def test_pretrained_leaves_shallow_depth_of_field_alone(pretrained, kind, seed):
    # The gate: a photo soft on purpose comes back at 45 dB or more against itself.
    # Measured: 70.3 and 67.0 dB for the first two (the subject in focus, the fur sharp).
    soft = _soft_chelsea(kind, seed)
    assert psnr(soft, deblur(pretrained, soft)) >= 45.0


def test_pretrained_harms_fur_on_a_receding_plane_less_than_before(pretrained):
    # The focal band crosses the cat's head; the fur beyond it is softened by 1-3 pixels,
    # which looks like a short shake. Measured: 42.0 dB (the model before: 44.1, stage 14:
    # 42.1); the soup of stages 7, 8 and 9b, which took defocus for shake, 34.7.
    soft = _soft_chelsea("plane", 3)
    assert psnr(soft, deblur(pretrained, soft)) > 40.0
