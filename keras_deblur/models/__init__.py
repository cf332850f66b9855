"""The DeblurGAN networks, and loading a saved generator."""

import functools

from keras_deblur.models.critic import build_critic
from keras_deblur.models.generator import build_generator
from keras_deblur.models.loading import load_generator
from keras_deblur.models.mobile_generator import build_mobile_generator
from keras_deblur.models.mobile_unet_generator import build_mobile_unet_generator
from keras_deblur.models.mobile_v1_generator import build_mobile_v1_generator

# Generator designs by name (the training recipe's `architecture`): the paper's,
# the mobile one (the design study's winner), its study variant without channel
# attention, the first shipped mobile design, and a U-Net candidate.
GENERATOR_BUILDERS = {
    "resnet": build_generator,
    "mobile": build_mobile_generator,
    "mobile_plain": functools.partial(build_mobile_generator, channel_attention=False),
    "mobile_v1": build_mobile_v1_generator,
    "mobile_unet": build_mobile_unet_generator,
}

__all__ = [
    "GENERATOR_BUILDERS",
    "build_critic",
    "build_generator",
    "build_mobile_generator",
    "build_mobile_unet_generator",
    "build_mobile_v1_generator",
    "load_generator",
]
