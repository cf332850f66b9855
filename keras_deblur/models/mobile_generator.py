"""The mobile generator: works at 1/4 resolution without losing pixels.

The winner of the mobile design study (MODEL_CARD.md). The first mobile
generator (`build_mobile_v1_generator`) leaves full resolution after one 3x3
conv and comes back through bilinear upsampling, which cannot synthesise the
high frequencies a deblurred edge needs. This one keeps every pixel on the way
down and learns every pixel on the way up:

- pixel unshuffle (SPACE_TO_DEPTH) x4 in: a 4x4 patch becomes 48 channels,
  so the body runs at 1/16 of the pixels with nothing thrown away;
- residual blocks of two 3x3 convs at 1/4 resolution (receptive field about
  150 pixels: larger than the longest synthetic shake, 60 pixels);
- optional channel attention in each block (squeeze-and-excitation: global
  average pool, two 1x1 convs, sigmoid gate), which lets each block see the
  whole image: camera shake blurs a whole photo alike, natural defocus does not;
- pixel shuffle (DEPTH_TO_SPACE) x4 out, a tanh residual added to the input.

Only builtin TFLite ops (CONV_2D, MEAN, LOGISTIC, MUL, ADD, the two shuffles),
no normalisation (int8-friendly), and the last conv of each block and the tail
start at zero, so the untrained network is exactly the identity.
"""

import keras

from keras_deblur.layers import DepthToSpace, GlobalSkip, SpaceToDepth

SCALE = 4


def conv(filters, kernel_size, name, strides=1, activation=None, zero_init=False):
    """A "same"-padded Conv2D, He-initialised or zero (a residual branch that starts at 0)."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        activation=activation,
        kernel_initializer="zeros" if zero_init else "he_normal",
        name=name,
    )


def _channel_attention(x, name, reduction=4):
    """x * sigmoid(W2 relu(W1 mean(x))): one gate per channel from the whole image."""
    filters = x.shape[-1]
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    gate = conv(filters // reduction, 1, f"{name}_squeeze", activation="relu")(gate)
    gate = conv(filters, 1, f"{name}_excite", activation="sigmoid")(gate)
    return keras.layers.Multiply(name=f"{name}_gate")([x, gate])


def residual_block(x, index, channel_attention=False):
    """x + conv(relu(conv(x))), the second conv zero at first; optionally a channel gate between."""
    name = f"res_block_{index}"
    filters = x.shape[-1]
    y = conv(filters, 3, f"{name}_conv_1", activation="relu")(x)
    if channel_attention:
        y = _channel_attention(y, f"{name}_attention")
    y = conv(filters, 3, f"{name}_conv_2", zero_init=True)(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def shuffle_head(blurred, filters):
    """Pixel unshuffle x4, then a 3x3 conv + ReLU: `(b, H, W, 3)` -> `(b, H/4, W/4, filters)`."""
    x = SpaceToDepth(SCALE, name="unshuffle")(blurred)
    return conv(filters, 3, "head_conv", activation="relu")(x)


def shuffle_tail(x, blurred):
    """A zero-initialised 3x3 conv to 48 channels, pixel shuffle x4, tanh, added to `blurred`.

    `(b, H/4, W/4, C)` -> `(b, H, W, 3)`, `clip(blurred + residual, -1, 1)`.
    """
    x = conv(3 * SCALE * SCALE, 3, "tail_conv", zero_init=True)(x)
    x = DepthToSpace(SCALE, name="shuffle")(x)
    residual = keras.layers.Activation("tanh", name="tail_tanh", dtype="float32")(x)
    return GlobalSkip(name="global_skip", dtype="float32")([blurred, residual])


def build_mobile_generator(
    num_filters=64,
    num_res_blocks=8,
    channel_attention=True,
    image_shape=(None, None, 3),
    name="mobile_deblur_generator",
):
    """Builds the pixel-(un)shuffle generator as a Keras functional model.

    Pixel unshuffle x4, a 3x3 conv + ReLU to `num_filters` channels,
    `num_res_blocks` residual blocks (3x3 conv + ReLU, optional channel
    attention, 3x3 conv), a 3x3 conv to 48 channels, pixel shuffle x4, tanh;
    the output is `clip(input + residual, -1, 1)`. With the defaults: 663,280
    parameters (646,256 without attention) and 2.64 GMAC at 256x256.

    Args:
        num_filters: int. Channels at 1/4 resolution. Defaults to 64.
        num_res_blocks: int. Residual blocks. Defaults to 8.
        channel_attention: bool. Squeeze-and-excitation gate in each block.
            Defaults to True.
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`: any height and width that are multiples of 4
            (`keras_deblur.inference.deblur` pads other sizes).
        name: str. Model name. Defaults to "mobile_deblur_generator".

    Returns:
        A `keras.Model` mapping blurred images `(batch, height, width, 3)` in
        [-1, 1] to deblurred images of the same shape in [-1, 1]. Untrained,
        it returns its input unchanged.

    Example:
    >>> generator = build_mobile_generator()
    >>> generator(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 64, 64, 3])
    """
    if num_res_blocks < 0 or num_filters < 8 or num_filters % 4:
        raise ValueError(
            "num_res_blocks must be >= 0 and num_filters a multiple of 4 (>= 8). "
            f"Received: num_res_blocks={num_res_blocks}, num_filters={num_filters}"
        )
    blurred = keras.Input(shape=image_shape, name="blurred")
    x = shuffle_head(blurred, num_filters)
    for index in range(1, num_res_blocks + 1):
        x = residual_block(x, index, channel_attention)
    return keras.Model(blurred, shuffle_tail(x, blurred), name=name)
