"""DeblurGAN's ResNet generator (Kupyn et al., CVPR 2018)."""

import keras

from keras_deblur.layers import (
    AlwaysOnDropout,
    GlobalSkip,
    InstanceNormalization,
    ReflectionPadding2D,
)

# The reference initialises every conv from N(0, 0.02) with zero biases.
_KERNEL_INIT_STDDEV = 0.02


def _conv(filters, kernel_size, name, strides=1):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="valid",
        kernel_initializer=keras.initializers.RandomNormal(stddev=_KERNEL_INIT_STDDEV),
        name=name,
    )


def _norm_relu(x, name):
    x = InstanceNormalization(name=f"{name}_norm")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, index, dropout_rate, dropout_at_inference):
    name = f"res_block_{index}"
    filters = x.shape[-1]
    y = ReflectionPadding2D(1, name=f"{name}_pad_1")(x)
    y = _conv(filters, 3, f"{name}_conv_1")(y)
    y = InstanceNormalization(name=f"{name}_norm_1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu")(y)
    if dropout_rate > 0:
        dropout = AlwaysOnDropout if dropout_at_inference else keras.layers.Dropout
        y = dropout(dropout_rate, name=f"{name}_dropout")(y)
    y = ReflectionPadding2D(1, name=f"{name}_pad_2")(y)
    y = _conv(filters, 3, f"{name}_conv_2")(y)
    y = InstanceNormalization(name=f"{name}_norm_2")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def build_generator(
    num_filters=64,
    num_res_blocks=9,
    dropout_rate=0.5,
    dropout_at_inference=False,
    global_skip=True,
    image_shape=(None, None, 3),
    name="deblurgan_generator",
):
    """Builds the DeblurGAN generator as a Keras functional model.

    Architecture of the reference `ResnetGenerator` (`resnet_9blocks`,
    InstanceNorm without affine, `learn_residual=True`): a reflect-padded 7x7
    conv, two stride-2 3x3 convs with one pixel of zero padding on every
    side, residual blocks, two stride-2 3x3 transposed convs on PyTorch's
    `padding=1, output_padding=1` grid, a reflect-padded 7x7 conv to 3
    channels and tanh; InstanceNorm + ReLU after every other conv. The
    default model has 11,378,179 parameters.

    Layer names are stable (`down_1_conv`, `res_block_3_conv_1`, `up_2_conv`,
    ...) so that weights can be mapped by name.

    Args:
        num_filters: int. Filters of the first conv; doubled by each
            downsampling. Defaults to 64.
        num_res_blocks: int. Residual blocks at the lowest resolution.
            Defaults to 9.
        dropout_rate: float. Dropout inside each residual block; 0 removes
            the dropout layers. Defaults to 0.5.
        dropout_at_inference: bool. Keep dropout active at inference, as the
            reference code does (its outputs are then random). Defaults to
            False: inference is deterministic.
        global_skip: bool. Output `clip(input + G(input), -1, 1)` instead of
            `G(input)`. Defaults to True.
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`: any height and width that are multiples of 4
            (`keras_deblur.deblur` pads other sizes).
        name: str. Model name. Defaults to "deblurgan_generator".

    Returns:
        A `keras.Model` mapping blurred images `(batch, height, width, 3)` in
        [-1, 1] to deblurred images of the same shape in [-1, 1].

    Example:
    >>> generator = build_generator(num_res_blocks=2)
    >>> generator(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 64, 64, 3])
    """
    if num_res_blocks < 0 or num_filters < 1:
        raise ValueError(
            "num_res_blocks must be >= 0 and num_filters >= 1. "
            f"Received: num_res_blocks={num_res_blocks}, num_filters={num_filters}"
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate}")

    blurred = keras.Input(shape=image_shape, name="blurred")
    x = ReflectionPadding2D(3, name="head_pad")(blurred)
    x = _conv(num_filters, 7, "head_conv")(x)
    x = _norm_relu(x, "head")

    for level in (1, 2):
        # PyTorch's padding=1 pads every side; Keras "same" would pad only
        # bottom/right at stride 2 and shift the sampling grid.
        x = keras.layers.ZeroPadding2D(1, name=f"down_{level}_pad")(x)
        x = _conv(num_filters * 2**level, 3, f"down_{level}_conv", strides=2)(x)
        x = _norm_relu(x, f"down_{level}")

    for index in range(1, num_res_blocks + 1):
        x = _residual_block(x, index, dropout_rate, dropout_at_inference)

    for level in (1, 2):
        x = keras.layers.Conv2DTranspose(
            num_filters * 2 ** (2 - level),
            3,
            strides=2,
            padding="valid",
            kernel_initializer=keras.initializers.RandomNormal(stddev=_KERNEL_INIT_STDDEV),
            name=f"up_{level}_conv",
        )(x)
        # "valid" gives 2n+1 rows; PyTorch's padding=1, output_padding=1 keeps
        # rows 1..2n of that grid, so drop the first row and column.
        x = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"up_{level}_crop")(x)
        x = _norm_relu(x, f"up_{level}")

    x = ReflectionPadding2D(3, name="tail_pad")(x)
    x = _conv(3, 7, "tail_conv")(x)
    outputs = keras.layers.Activation("tanh", name="tail_tanh", dtype="float32")(x)
    if global_skip:
        outputs = GlobalSkip(name="global_skip", dtype="float32")([blurred, outputs])
    return keras.Model(blurred, outputs, name=name)
