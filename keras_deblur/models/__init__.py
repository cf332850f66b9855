"""The two DeblurGAN networks, and loading a saved generator."""

from keras_deblur.models.critic import build_critic
from keras_deblur.models.generator import build_generator
from keras_deblur.models.loading import load_generator
from keras_deblur.models.mobile_generator import build_mobile_generator

__all__ = ["build_critic", "build_generator", "build_mobile_generator", "load_generator"]
