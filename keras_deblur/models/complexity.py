"""Multiply-accumulate counts of a generator at a given image size."""

import keras
import numpy as np


def _layer_macs(layer, input_shape, output_shape):
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = layer.kernel.shape  # (kh, kw, channels, multiplier)
        return int(np.prod(output_shape[1:3])) * int(np.prod(kernel))
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel scatters a full kernel: kh * kw * cin * cout per input pixel.
        return int(np.prod(input_shape[1:3])) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Conv2D):
        return int(np.prod(output_shape[1:3])) * int(np.prod(layer.kernel.shape))
    return 0


def count_macs(model, height=256, width=256):
    """Multiply-accumulates of the convolutions of a functional model for one image.

    Counts Conv2D, DepthwiseConv2D and Conv2DTranspose layers (where nearly all
    of a generator's work is); additions, activations and resizes are left out.

    Args:
        model: functional `keras.Model` with one `(batch, H, W, C)` input.
        height, width: int. Image size. Defaults to 256x256.

    Returns:
        int: multiply-accumulates for one `(1, height, width, C)` image.

    Example:
    >>> from keras_deblur.models import build_generator
    >>> round(count_macs(build_generator(), 256, 256) / 1e9, 1)
    49.6
    """
    channels = model.inputs[0].shape[-1]
    fixed = keras.models.clone_model(
        model, input_tensors=keras.Input((height, width, channels), batch_size=1)
    )
    total = 0
    for layer in fixed.layers:
        if not layer.weights:
            continue
        total += _layer_macs(layer, layer.input.shape, layer.output.shape)
    return total
