"""The two DeblurGAN networks."""

from keras_deblur.models.critic import build_critic
from keras_deblur.models.generator import build_generator

__all__ = ["build_critic", "build_generator"]
