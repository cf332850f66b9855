"""The DeblurGAN networks, and loading a saved generator.

`load_generator` is imported with the package; the builders (and
`GENERATOR_BUILDERS`) on first use, so that importing the package, or
loading and running a `.tflite` generator, never imports TensorFlow or Keras
(about 0.7 GB of memory).
"""

import importlib

from keras_deblur.models.loading import load_generator

# Name -> the submodule that defines it, imported when the name is first asked for.
_LAZY_NAMES = {
    "GENERATOR_BUILDERS": "designs",
    "build_critic": "critic",
    "build_generator": "generator",
    "build_mobile_generator": "mobile_generator",
    "build_mobile_unet_generator": "mobile_unet_generator",
    "build_mobile_v1_generator": "mobile_v1_generator",
}

__all__ = [*_LAZY_NAMES, "load_generator"]


def __getattr__(name):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)


def __dir__():
    return sorted([*globals(), *_LAZY_NAMES])
