"""DeblurGAN's PatchGAN critic (the reference `NLayerDiscriminator`)."""

import keras

from keras_deblur.layers import InstanceNormalization

_KERNEL_SIZE = 4
# The reference computes ceil((4 - 1) / 2) = 2 pixels of zero padding.
_PADDING = 2
_MAX_FILTER_MULTIPLIER = 8


def _padded_conv(x, filters, strides, name):
    x = keras.layers.ZeroPadding2D(_PADDING, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters,
        _KERNEL_SIZE,
        strides=strides,
        padding="valid",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
        name=f"{name}_conv",
    )(x)


def build_critic(
    num_filters=64,
    num_layers=3,
    image_shape=(None, None, 3),
    name="deblurgan_critic",
):
    """Builds the PatchGAN critic of DeblurGAN as a Keras functional model.

    4x4 convs with 2 pixels of zero padding: `num_layers` stride-2 convs
    (64, 128, 256 filters by default), a stride-1 conv (512) and a stride-1
    conv to one channel. LeakyReLU(0.2) after all but the last conv,
    InstanceNorm (no affine) after all but the first and last. No sigmoid:
    the output is a Wasserstein critic score per patch. The default model has
    2,764,737 parameters and maps a 256x256 image to a 35x35 score map.

    Args:
        num_filters: int. Filters of the first conv. Defaults to 64.
        num_layers: int. Stride-2 convs. Defaults to 3.
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`.
        name: str. Model name. Defaults to "deblurgan_critic".

    Returns:
        A `keras.Model` mapping images `(batch, height, width, 3)` in [-1, 1]
        to scores `(batch, height', width', 1)`, float32.
    """
    if num_layers < 1 or num_filters < 1:
        raise ValueError(
            "num_layers and num_filters must be >= 1. "
            f"Received: num_layers={num_layers}, num_filters={num_filters}"
        )
    image = keras.Input(shape=image_shape, name="image")
    x = _padded_conv(image, num_filters, 2, "layer_1")
    x = keras.layers.LeakyReLU(0.2, name="layer_1_lrelu")(x)

    # num_layers - 1 more stride-2 convs, then one stride-1 conv.
    strides = [2] * (num_layers - 1) + [1]
    for index, stride in enumerate(strides, start=2):
        multiplier = min(2 ** (index - 1), _MAX_FILTER_MULTIPLIER)
        name_i = f"layer_{index}"
        x = _padded_conv(x, num_filters * multiplier, stride, name_i)
        x = InstanceNormalization(name=f"{name_i}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"{name_i}_lrelu")(x)

    x = _padded_conv(x, 1, 1, "score")
    scores = keras.layers.Activation("linear", name="score_output", dtype="float32")(x)
    return keras.Model(image, scores, name=name)
