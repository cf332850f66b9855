"""The generator rewritten with ops that XNNPACK (LiteRT's CPU backend) runs fast.

Parts of the Keras generator convert to TFLite ops that XNNPACK does not run
well (timed with 2 threads on a 2-core AVX2 CPU):

- `ReflectionPadding2D` becomes MIRROR_PAD, which XNNPACK does not support:
  each one runs in TFLite's reference kernel (7.0 ms at 64x64x256, 27 ms
  for the tail's 3-pixel pad at 256x256x64) and splits the graph into a new
  XNNPACK partition. The same pixels built from one-row STRIDED_SLICEs and a
  CONCATENATION take 0.3 ms and 2 ms, inside XNNPACK.
- `Conv2DTranspose` (3x3, stride 2) plus the crop onto PyTorch's grid becomes
  TRANSPOSE_CONV + STRIDED_SLICE: 55 ms (64x64x256 -> 128) and 58 ms
  (128x128x128 -> 64). Each output pixel parity (row, column) of a stride-2
  transposed conv is an ordinary small conv of the input (1x1, 1x2, 2x1,
  2x2 taps of the 3x3 kernel), so four CONV_2Ds and an interleave give the
  same result in 16 and 26 ms.
- The residual blocks' 3x3 convs (87% of the multiply-adds) run at the CPU's
  GEMM peak already; Winograd F(2x2, 3x3) needs 2.25x fewer multiplications
  (`WinogradConv2D`: 17 instead of 25 ms at 64x64x256). For float models.

`rewrite_for_xnnpack(model, winograd)` returns a copy of a generator with
those layers swapped for the equivalents below, with the same weights; it computes
the same function (float rounding aside), so the export validation against
the original Keras model still applies. The ops used (STRIDED_SLICE,
CONCATENATION, PAD, CONV_2D, RESHAPE, SPACE_TO_DEPTH, ADD, SUB), all on 4-D
tensors, are also supported by the TFLite GPU delegate and quantize to int8.
"""

import keras
import numpy as np
from keras import ops

from keras_deblur.layers import ReflectionPadding2D, slice_axis

# For each output parity (0: even rows, 1: odd rows) of a stride-2, 3-tap
# transposed conv on PyTorch's padding=1, output_padding=1 grid: which kernel
# tap multiplies input row m + offset. Even rows 2m: tap 1 on row m; odd rows
# 2m+1: tap 2 on row m and tap 0 on row m+1 (zero past the last row).
_TAPS_BY_PARITY = {0: (1,), 1: (2, 0)}


def _reflect(x, axis, before, after):
    """Reflect-pads one axis with single-row slices (no MIRROR_PAD, no REVERSE)."""
    rows = [slice_axis(x, axis, i, i + 1) for i in range(before, 0, -1)]
    rows.append(x)
    rows += [slice_axis(x, axis, -2 - i, -1 - i) for i in range(after)]
    return ops.concatenate(rows, axis=axis) if len(rows) > 1 else x


@keras.saving.register_keras_serializable(package="keras_deblur_export")
class SlicedReflectionPadding2D(ReflectionPadding2D):
    """`ReflectionPadding2D` from slices and concatenation instead of MIRROR_PAD.

    Same arguments, shapes and output as `keras_deblur.layers.ReflectionPadding2D`.
    """

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        return _reflect(_reflect(inputs, 1, top, bottom), 2, left, right)


@keras.saving.register_keras_serializable(package="keras_deblur_export")
class ParityConv2DTranspose(keras.layers.Layer):
    """A 3x3, stride-2 transposed conv on PyTorch's `padding=1, output_padding=1` grid.

    Equal to `Conv2DTranspose(filters, 3, strides=2, padding="valid")`
    followed by dropping the first row and column (the generator's
    `up_*_conv` + `up_*_crop`), computed as four small convs, one per output
    (row, column) parity, whose outputs are interleaved. The weights have
    the `Conv2DTranspose` layout, so they copy over unchanged.

    Args:
        filters: int. Output channels.

    Shapes:
        `(batch, height, width, channels)` ->
        `(batch, 2 * height, 2 * width, filters)`.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape):
        # Conv2DTranspose layout: (rows, cols, output channels, input channels).
        self.kernel = self.add_weight(
            shape=(3, 3, self.filters, input_shape[-1]), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def _parity(self, padded, row_parity, col_parity):
        rows, cols = _TAPS_BY_PARITY[row_parity], _TAPS_BY_PARITY[col_parity]
        # (len(rows), len(cols), input channels, filters) for ops.conv.
        kernel = ops.stack(
            [ops.stack([ops.transpose(self.kernel[r, c]) for c in cols]) for r in rows]
        )
        # One tap needs rows m only (drop the zero row), two need m and m+1.
        inputs = padded if len(rows) == 2 else padded[:, :-1]
        inputs = inputs if len(cols) == 2 else inputs[:, :, :-1]
        return ops.conv(inputs, kernel, strides=1, padding="valid") + self.bias

    def call(self, inputs):
        padded = ops.pad(inputs, [[0, 0], [0, 1], [0, 1], [0, 0]])
        parities = [[self._parity(padded, row, col) for col in (0, 1)] for row in (0, 1)]
        return _interleave(parities)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        height = None if height is None else 2 * height
        width = None if width is None else 2 * width
        return (batch, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config


# Winograd F(2x2, 3x3) (Lavin & Gray, 2016): a 2x2 block of outputs of a 3x3
# conv from the 4x4 input tile around it, with 16 multiplications per
# (input, output) channel pair instead of 36. Output = A^T [(G g G^T) * (B^T d B)] A.
_WINOGRAD_B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], "float32")
_WINOGRAD_A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])


def _signed_sum(coefficients, terms):
    """sum(c * t) for coefficients in {-1, 0, 1}, as ADD/SUB ops only."""
    total = None
    for coefficient, term in zip(coefficients, terms, strict=True):
        if coefficient == 0:
            continue
        if total is None:
            total = term if coefficient == 1 else -term
        else:
            total = total + term if coefficient == 1 else total - term
    return total


@keras.saving.register_keras_serializable(package="keras_deblur_export")
class WinogradConv2D(keras.layers.Layer):
    """A 3x3, stride-1, "valid" conv (`keras.layers.Conv2D` with bias) by Winograd F(2x2, 3x3).

    XNNPACK runs convs as direct GEMMs; this layer spells the Winograd
    algorithm out in TFLite builtins instead: SPACE_TO_DEPTH and slices cut
    the 4x4 tiles (stride 2), ADD/SUB apply the +-1 input and output
    transforms, and 16 1x1 CONV_2Ds (GEMMs with the transformed kernel,
    folded to constants by the converter) do the multiplications. At
    64x64x256 -> 256 with 2 threads that is 17 ms instead of 25 ms, with a
    smaller float error than the direct conv (3.3e-6 vs 9.5e-6 max abs
    against TensorFlow). For float models only: the transforms widen the
    value range, which costs int8 precision.

    Where the output height or width is odd or unknown when traced (dynamic
    shape), it falls back to the direct conv.

    Args:
        filters: int. Output channels.

    Shapes:
        `(batch, height + 2, width + 2, channels)` ->
        `(batch, height, width, filters)`.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape):
        # Conv2D layout, so the weights copy over: (3, 3, in, out) and (out,).
        self.kernel = self.add_weight(
            shape=(3, 3, input_shape[-1], self.filters), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        padded_height, padded_width, channels = inputs.shape[1:]
        if padded_height is None or padded_width is None or padded_height % 2 or padded_width % 2:
            return ops.conv(inputs, self.kernel, padding="valid") + self.bias
        height, width = padded_height - 2, padded_width - 2
        import tensorflow as tf  # SPACE_TO_DEPTH has no keras.ops equivalent.

        tiles_h, tiles_w = height // 2, width // 2
        # 2x2 pixel blocks: tile (y, x) starts at block (y, x), so its pixel
        # (i, j) is block (y + i // 2, x + j // 2), sub-pixel (i % 2, j % 2).
        blocks = tf.nn.space_to_depth(inputs, 2)

        def tile_pixel(i, j):
            part = (i % 2) * 2 + j % 2
            return blocks[
                :,
                i // 2 : i // 2 + tiles_h,
                j // 2 : j // 2 + tiles_w,
                part * channels : (part + 1) * channels,
            ]

        tiles = [[tile_pixel(i, j) for j in range(4)] for i in range(4)]
        rows = [
            [_signed_sum(_WINOGRAD_B_T[a], [tiles[i][j] for i in range(4)]) for j in range(4)]
            for a in range(4)
        ]
        transformed = [[_signed_sum(_WINOGRAD_B_T[b], rows[a]) for b in range(4)] for a in range(4)]
        kernel = ops.einsum("ai,ijco,bj->abco", _WINOGRAD_G, self.kernel, _WINOGRAD_G)
        products = [
            [ops.conv(transformed[a][b], kernel[a, b][None, None]) for b in range(4)]
            for a in range(4)
        ]
        columns = [[_signed_sum(_WINOGRAD_A_T[q], products[a]) for q in range(2)] for a in range(4)]
        outputs = [
            [_signed_sum(_WINOGRAD_A_T[p], [columns[a][q] for a in range(4)]) for q in range(2)]
            for p in range(2)
        ]
        return _interleave(outputs) + self.bias

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        height = None if height is None else height - 2
        width = None if width is None else width - 2
        return (batch, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config


def _interleave(parities):
    """`parities[p][q]` `(b, h, w, f)` -> `(b, 2h, 2w, f)` with it at rows 2i+p, cols 2j+q.

    Concatenations and reshapes of 4-D tensors only (the GPU delegate takes
    no 5-D tensors); no TRANSPOSE or DEPTH_TO_SPACE, so it stays cheap and
    inside XNNPACK for every quantization.
    """
    batch, height, width = ops.shape(parities[0][0])[:3]
    filters = parities[0][0].shape[-1]
    rows = [
        # (b, h, w, 2f) -> (b, h, 2w, f): columns even, odd, even, ...
        ops.reshape(ops.concatenate([even, odd], axis=3), (batch, height, 2 * width, filters))
        for even, odd in parities
    ]
    # (b, h, 4w, f) -> (b, 2h, 2w, f): rows even, odd, even, ...
    return ops.reshape(ops.concatenate(rows, axis=2), (batch, 2 * height, 2 * width, filters))


def _is_pytorch_grid_transpose(layer, next_layer):
    """A 3x3 stride-2 "valid" Conv2DTranspose whose output is cropped by ((1, 0), (1, 0))."""
    return (
        isinstance(layer, keras.layers.Conv2DTranspose)
        and tuple(layer.kernel_size) == (3, 3)
        and tuple(layer.strides) == (2, 2)
        and layer.padding == "valid"
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.use_bias
        and layer.activation is keras.activations.linear
        and isinstance(next_layer, keras.layers.Cropping2D)
        and tuple(map(tuple, next_layer.cropping)) == ((1, 0), (1, 0))
        and next_layer.input is layer.output
        and len(layer._outbound_nodes) == 1
    )


def _is_plain_conv3x3(layer):
    """A 3x3, stride-1, "valid", ungrouped Conv2D with bias and no activation."""
    return (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.kernel_size) == (3, 3)
        and tuple(layer.strides) == (1, 1)
        and layer.padding == "valid"
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.use_bias
        and layer.activation is keras.activations.linear
    )


def rewrite_for_xnnpack(model, winograd=False):
    """A copy of a generator with XNNPACK-friendly padding, upsampling and convs.

    Every `ReflectionPadding2D` becomes `SlicedReflectionPadding2D`; every
    3x3 stride-2 `Conv2DTranspose` followed by the ((1, 0), (1, 0)) crop
    becomes a `ParityConv2DTranspose` (and the crop an `Identity`); with
    `winograd`, every plain 3x3 stride-1 `Conv2D` (the residual blocks')
    becomes a `WinogradConv2D`. Other layers are shared with `model`; the
    new ones get the weights of the layers they replace.

    Args:
        model: a functional `keras.Model` (e.g. the DeblurGAN generator).
        winograd: bool. Also swap 3x3 convs for Winograd F(2x2, 3x3); for
            float models run by XNNPACK (the GPU delegate has its own
            Winograd convs, and int8 loses precision in the transforms).
            Defaults to False.

    Returns:
        A new `keras.Model` computing the same function.
    """
    layers = model.layers
    transposes, crops = set(), set()
    for layer, next_layer in zip(layers, layers[1:], strict=False):
        if _is_pytorch_grid_transpose(layer, next_layer):
            transposes.add(layer.name)
            crops.add(next_layer.name)

    def clone_layer(layer):
        if type(layer) is ReflectionPadding2D:
            return SlicedReflectionPadding2D.from_config(layer.get_config())
        if layer.name in transposes:
            return ParityConv2DTranspose(layer.filters, name=layer.name, dtype=layer.dtype_policy)
        if layer.name in crops:
            return keras.layers.Identity(name=layer.name)
        if winograd and _is_plain_conv3x3(layer):
            return WinogradConv2D(layer.filters, name=layer.name, dtype=layer.dtype_policy)
        return layer  # shared with `model`, weights included

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    originals = {layer.name: layer for layer in layers}
    for layer in clone.layers:
        original = originals.get(layer.name)
        if original is not None and layer is not original and original.weights:
            layer.set_weights(original.get_weights())
    return clone
