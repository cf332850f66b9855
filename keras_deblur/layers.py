"""Custom layers of the DeblurGAN networks.

Every layer here is registered as serializable so that `.keras` files load with
`keras.saving.load_model(..., safe_mode=True)`, and is written with `keras.ops`
only so that it converts to TFLite builtin ops (no Lambda layers, no custom ops).
"""

import keras
from keras import ops


def _pair(value, name):
    """Turns `p`, `(p_h, p_w)` or `((top, bottom), (left, right))` into the last form."""
    if isinstance(value, int):
        return ((value, value), (value, value))
    if len(value) == 2 and all(isinstance(v, int) for v in value):
        return ((value[0], value[0]), (value[1], value[1]))
    if len(value) == 2 and all(len(v) == 2 for v in value):
        return tuple(tuple(int(p) for p in v) for v in value)
    raise ValueError(
        f"`{name}` must be an int, a pair of ints or a pair of pairs. Received: {name}={value}"
    )


@keras.saving.register_keras_serializable(package="keras_deblur")
class ReflectionPadding2D(keras.layers.Layer):
    """Mirror padding of the spatial axes, without repeating the edge pixel.

    Equivalent to PyTorch's `nn.ReflectionPad2d` used by the reference
    DeblurGAN. Built on `keras.ops.pad(mode="reflect")`, which TFLite converts
    to its builtin MIRROR_PAD op.

    Args:
        padding: int, pair of ints, or `((top, bottom), (left, right))`.
            Pixels added on each side. Defaults to 1.

    Shapes:
        `(batch, height, width, channels)` ->
        `(batch, height + top + bottom, width + left + right, channels)`.
        Each padding must be smaller than the padded axis.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pair(padding, "padding")

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        return ops.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        batch, height, width, channels = input_shape
        height = None if height is None else height + top + bottom
        width = None if width is None else width + left + right
        return (batch, height, width, channels)

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding})
        return config


@keras.saving.register_keras_serializable(package="keras_deblur")
class InstanceNormalization(keras.layers.Layer):
    """Instance normalization (Ulyanov et al., 2016) for NHWC images.

    Each image and channel is normalised by the mean and variance of its own
    pixels, in training and in inference alike: there are no running
    statistics. The reference DeblurGAN uses `nn.InstanceNorm2d(affine=False)`,
    hence no learned scale or offset by default. Numerically the same as
    `keras.layers.GroupNormalization(groups=-1)` (biased variance).

    Args:
        epsilon: float. Added to the variance before the square root.
            Defaults to 1e-5, as in PyTorch.
        affine: bool. Learn a per-channel scale (ones) and offset (zeros).
            Defaults to False.

    Shapes:
        `(batch, height, width, channels)` in, the same shape out.
    """

    def __init__(self, epsilon=1e-5, affine=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.affine = affine

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "InstanceNormalization needs a known channel count. "
                f"Received: input_shape={input_shape}"
            )
        if self.affine:
            self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, inputs):
        # Statistics in float32 even under mixed precision: a float16 variance
        # over a large image overflows or loses the small terms.
        x = ops.cast(inputs, "float32")
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        centred = x - mean
        # centred * centred, not ops.square: TFLite fuses the latter with the
        # subtraction into SQUARED_DIFFERENCE, which int8 XNNPACK lacks (10.4 ms
        # vs 0.6 ms for an int8 norm at 64x64x256).
        variance = ops.mean(centred * centred, axis=(1, 2), keepdims=True)
        outputs = centred * ops.rsqrt(variance + self.epsilon)
        if self.affine:
            outputs = outputs * self.gamma + self.beta
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "affine": self.affine})
        return config


@keras.saving.register_keras_serializable(package="keras_deblur")
class AlwaysOnDropout(keras.layers.Dropout):
    """Dropout that stays active at inference, as in the reference DeblurGAN.

    The reference code never switches its generator to eval mode, so its
    published results were produced with dropout on. A plain `Dropout` would
    be overridden by the `training` flag a functional model passes down, so
    this layer ignores that flag.

    Args: as `keras.layers.Dropout`.
    """

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


@keras.saving.register_keras_serializable(package="keras_deblur")
class GlobalSkip(keras.layers.Layer):
    """Adds the predicted residual to the input image and clips to [-1, 1].

    DeblurGAN's generator learns the residual between the sharp and the
    blurred image (the reference's `learn_residual=True`).

    Shapes:
        call([image, residual]) with two `(batch, height, width, 3)` tensors
        in [-1, 1] -> `(batch, height, width, 3)` in [-1, 1].
    """

    def call(self, inputs):
        image, residual = inputs
        return ops.clip(ops.cast(image, residual.dtype) + residual, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape[1]


def slice_axis(x, axis, start, stop):
    """`x[..., start:stop, ...]` on `axis` of a 4-D tensor (negative indices count from
    the end): a STRIDED_SLICE in TFLite, which XNNPACK runs (no GATHER)."""
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _neighbour_blend(x, axis):
    """`(0.75 x[i] + 0.25 x[i-1], 0.75 x[i] + 0.25 x[i+1])` along `axis`, edges repeated."""
    previous = ops.concatenate(
        [slice_axis(x, axis, 0, 1), slice_axis(x, axis, None, -1)], axis=axis
    )
    following = ops.concatenate(
        [slice_axis(x, axis, 1, None), slice_axis(x, axis, -1, None)], axis=axis
    )
    return 0.75 * x + 0.25 * previous, 0.75 * x + 0.25 * following


@keras.saving.register_keras_serializable(package="keras_deblur")
class BilinearUpsampling2D(keras.layers.Layer):
    """x2 bilinear upsampling (half-pixel centres) for inputs of any size, traced or not.

    The same values as `keras.layers.UpSampling2D(2, interpolation="bilinear")`,
    whose `ops.image.resize` refuses heights and widths unknown at trace time
    (Keras relaxes shapes once it has seen a few image sizes). At scale 2 every
    output pixel is 3/4 of its source pixel plus 1/4 of the neighbour on its
    side, so the layer needs only slices, concatenations, multiply-adds and
    4-D reshapes, which TFLite runs as builtins on XNNPACK and the GPU delegate.

    Shapes:
        `(batch, height, width, channels)` -> `(batch, 2 height, 2 width, channels)`.
    """

    def call(self, inputs):
        _, height, width, channels = ops.shape(inputs)
        # Rows: concatenating the two phases along width then reshaping interleaves them.
        before, after = _neighbour_blend(inputs, axis=1)
        rows = ops.concatenate([before, after], axis=2)
        rows = ops.reshape(rows, (-1, 2 * height, width, channels))
        before, after = _neighbour_blend(rows, axis=2)
        return ops.reshape(
            ops.concatenate([before, after], axis=3), (-1, 2 * height, 2 * width, channels)
        )

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (
            batch,
            None if height is None else 2 * height,
            None if width is None else 2 * width,
            channels,
        )


@keras.saving.register_keras_serializable(package="keras_deblur")
class SpaceToDepth(keras.layers.Layer):
    """Pixel unshuffle: each `block_size` x `block_size` patch becomes one pixel's channels.

    Keeps every input pixel (a strided conv would not), so the network can work
    at low resolution without throwing detail away; TFLite runs it as the
    SPACE_TO_DEPTH builtin.

    Shapes:
        `(batch, height, width, channels)`, height and width multiples of
        `block_size` -> `(batch, height / b, width / b, channels * b * b)`.
    """

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return ops.space_to_depth(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block_size
        return (
            batch,
            None if height is None else height // b,
            None if width is None else width // b,
            channels * b * b,
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="keras_deblur")
class DepthToSpace(keras.layers.Layer):
    """Pixel shuffle, the inverse of `SpaceToDepth`: channels become a patch of pixels.

    Unlike bilinear upsampling, every output pixel gets its own learned value,
    so the network can put back high frequencies; TFLite runs it as the
    DEPTH_TO_SPACE builtin.

    Shapes:
        `(batch, height, width, channels)`, channels a multiple of
        `block_size ** 2` -> `(batch, height * b, width * b, channels / b**2)`.
    """

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return ops.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block_size
        return (
            batch,
            None if height is None else height * b,
            None if width is None else width * b,
            channels // (b * b),
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="keras_deblur")
class CropToMatch(keras.layers.Layer):
    """Crops the first input's bottom and right edges to the second input's height and width.

    A stride-2 level of an odd-sized map has `ceil(n / 2)` pixels and comes back
    with one row or column too many; this trims it before the skip is added
    (TFLite: a STRIDED_SLICE builtin).

    Shapes:
        `[(batch, >= height, >= width, channels), (batch, height, width, any)]`
        -> `(batch, height, width, channels)`.
    """

    def call(self, inputs):
        x, reference = inputs
        height, width = ops.shape(reference)[1], ops.shape(reference)[2]
        return x[:, :height, :width, :]

    def compute_output_shape(self, input_shapes):
        (batch, _, _, channels), (_, height, width, _) = input_shapes
        return (batch, height, width, channels)
