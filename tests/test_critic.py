import numpy as np
import pytest

from keras_deblur.layers import InstanceNormalization
from keras_deblur.models import build_critic


def test_default_critic_has_the_reference_parameter_count():
    assert build_critic().count_params() == 2_764_737


def test_critic_maps_256_to_the_reference_35x35_score_map():
    scores = build_critic()(np.zeros((1, 256, 256, 3), "float32"))
    assert tuple(scores.shape) == (1, 35, 35, 1)


@pytest.mark.parametrize("size,expected", [((64, 64), (11, 11)), ((68, 92), (12, 15))])
def test_critic_score_map_follows_the_padding_2_arithmetic(size, expected):
    scores = build_critic(num_filters=8)(np.zeros((1, *size, 3), "float32"))
    assert tuple(scores.shape) == (1, *expected, 1)


def test_norm_after_all_but_first_and_last_conv():
    critic = build_critic()
    norms = [layer.name for layer in critic.layers if isinstance(layer, InstanceNormalization)]
    assert norms == ["layer_2_norm", "layer_3_norm", "layer_4_norm"]
