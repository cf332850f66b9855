"""keras-deblur: DeblurGAN (Kupyn et al., CVPR 2018) on Keras 3.

`keras_deblur.inference.deblur(model, image)` deblurs one photo; it is not
re-exported here because `keras_deblur.deblur` is the command-line module.

Importing the package does not import TensorFlow or Keras: `layers` and the
builders are imported on first use (see `keras_deblur.models`), so a `.tflite`
generator runs without them.
"""

import importlib

from keras_deblur.models import load_generator

__version__ = "0.1.0"

# Name -> the module that defines it, imported when the name is first asked for.
_LAZY_NAMES = {
    "build_critic": "keras_deblur.models",
    "build_generator": "keras_deblur.models",
    "layers": "keras_deblur.layers",
}

__all__ = ["build_critic", "build_generator", "layers", "load_generator"]


def __getattr__(name):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY_NAMES[name])
    return module if module.__name__.endswith(f".{name}") else getattr(module, name)


def __dir__():
    return sorted([*globals(), *_LAZY_NAMES])
