"""The two DeblurGAN networks, and loading a saved generator."""

import functools

from keras_deblur.models.critic import build_critic
from keras_deblur.models.generator import build_generator
from keras_deblur.models.loading import load_generator
from keras_deblur.models.mobile_generator import build_mobile_generator
from keras_deblur.models.shuffle_generator import build_shuffle_generator

# Generator designs by name (the training recipe's `architecture`): the paper's,
# the shipped mobile one, and the candidates of the mobile design study.
GENERATOR_BUILDERS = {
    "resnet": build_generator,
    "mobile": build_mobile_generator,
    "shuffle": build_shuffle_generator,
    "shuffle_plain": functools.partial(build_shuffle_generator, channel_attention=False),
}

__all__ = [
    "GENERATOR_BUILDERS",
    "build_critic",
    "build_generator",
    "build_mobile_generator",
    "build_shuffle_generator",
    "load_generator",
]
