"""keras-deblur: DeblurGAN (Kupyn et al., CVPR 2018) on Keras 3.

`keras_deblur.inference.deblur(model, image)` deblurs one photo; it is not
re-exported here because `keras_deblur.deblur` is the command-line module.
"""

from keras_deblur import layers
from keras_deblur.models import build_critic, build_generator, load_generator

__version__ = "0.1.0"

__all__ = ["build_critic", "build_generator", "layers", "load_generator"]
