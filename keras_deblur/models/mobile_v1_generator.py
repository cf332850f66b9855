"""The first shipped mobile generator (v1): the same contract as the paper's, a tenth of the work.

Shipped until the design study (MODEL_CARD.md) replaced it with `build_mobile_generator`;
kept to reproduce that model and its lineage.

The paper's generator costs 49.6 GMAC at 256x256 and relies on InstanceNorm,
which is the error source and the slow path of int8 TFLite models
(export/README.md). This one keeps what deblurring needs, a receptive field
larger than the blur and a global skip, and drops what phones pay for:

- no normalisation layers: plain convs + ReLU, which XNNPACK and the GPU
  delegate fuse and int8 quantises per channel without loss;
- the work at 1/4 resolution in plain 3x3 residual blocks (measured on 2 CPU
  cores: a 3x3 residual body trains 1.3x faster per crop than an inverted-residual
  body of depthwise convs at a similar parameter count);
- bilinear upsampling added to the encoder's features (U-Net style) instead of
  transposed convs;
- the tail conv and the last conv of each block start at zero, so the
  untrained network is the identity and training only learns corrections:
  sharp photos stay as they are unless the training data says otherwise.
"""

import keras

from keras_deblur.layers import BilinearUpsampling2D, GlobalSkip
from keras_deblur.models.mobile_generator import conv, residual_block


def _up_level(x, skip, level):
    """1x1 conv to the skip's width, bilinear x2, add the skip, 3x3 conv + ReLU."""
    name = f"up_{level}"
    x = conv(skip.shape[-1], 1, f"{name}_reduce")(x)
    x = BilinearUpsampling2D(name=f"{name}_resize")(x)
    x = keras.layers.Add(name=f"{name}_skip")([x, skip])
    return conv(skip.shape[-1], 3, f"{name}_conv", activation="relu")(x)


def build_mobile_v1_generator(
    num_filters=64,
    num_res_blocks=6,
    image_shape=(None, None, 3),
    name="mobile_v1_deblur_generator",
):
    """Builds the v1 mobile generator as a Keras functional model.

    A 3x3 conv at full resolution (`3/8 * num_filters` channels), two stride-2
    3x3 convs (`num_filters / 2`, `num_filters`), `num_res_blocks` residual
    blocks of two 3x3 convs at 1/4 resolution, two upsampling levels (1x1 conv,
    bilinear x2, add the encoder's features, 3x3 conv), a 3x3 conv to 3
    channels and tanh; the output is `clip(input + residual, -1, 1)`. ReLU
    after every conv but the block and tail outputs; no normalisation.
    The default model has 487,227 parameters and costs 2.6 GMAC at 256x256.

    Args:
        num_filters: int. Channels at 1/4 resolution. Defaults to 64.
        num_res_blocks: int. Residual blocks at 1/4 resolution. Defaults to 6.
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`: any height and width that are multiples of 4
            (`keras_deblur.inference.deblur` pads other sizes).
        name: str. Model name. Defaults to "mobile_v1_deblur_generator".

    Returns:
        A `keras.Model` mapping blurred images `(batch, height, width, 3)` in
        [-1, 1] to deblurred images of the same shape in [-1, 1]. Untrained,
        it returns its input unchanged.

    Example:
    >>> generator = build_mobile_v1_generator()
    >>> generator(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 64, 64, 3])
    """
    if num_res_blocks < 0 or num_filters < 8 or num_filters % 8:
        raise ValueError(
            "num_res_blocks must be >= 0 and num_filters a multiple of 8. "
            f"Received: num_res_blocks={num_res_blocks}, num_filters={num_filters}"
        )
    blurred = keras.Input(shape=image_shape, name="blurred")
    full = conv(num_filters * 3 // 8, 3, "head_conv", activation="relu")(blurred)
    half = conv(num_filters // 2, 3, "down_1_conv", strides=2, activation="relu")(full)
    x = conv(num_filters, 3, "down_2_conv", strides=2, activation="relu")(half)
    for index in range(1, num_res_blocks + 1):
        x = residual_block(x, index)
    x = _up_level(x, half, 1)
    x = _up_level(x, full, 2)
    x = conv(3, 3, "tail_conv", zero_init=True)(x)
    residual = keras.layers.Activation("tanh", name="tail_tanh", dtype="float32")(x)
    outputs = GlobalSkip(name="global_skip", dtype="float32")([blurred, residual])
    return keras.Model(blurred, outputs, name=name)
