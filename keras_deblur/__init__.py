"""keras-deblur: DeblurGAN (Kupyn et al., CVPR 2018) on Keras 3."""

from keras_deblur import layers
from keras_deblur.models import build_critic, build_generator

__version__ = "0.1.0"

__all__ = ["build_critic", "build_generator", "layers"]
