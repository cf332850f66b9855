"""A three-level U-Net candidate for the mobile generator (design study).

The mobile generator spends its whole budget at 1/4 resolution with 64
channels: 0.66 M parameters, 2.64 GMAC at 256x256, and on its own training
photos it gains no more than on held-out ones, so it underfits. A U-Net puts
parameters where they are cheap: a 3x3 conv costs the same MACs at every level
when the width doubles as the resolution halves, but holds 4x the weights.
This one keeps the mobile design's way in and out (pixel unshuffle / shuffle
x4, nothing thrown away) and adds two coarser levels:

- 1/4: `widths[0]` channels; 1/8: `widths[1]`; 1/16: `widths[2]`;
- down: a 2x2 stride-2 conv (a pixel unshuffle followed by a 1x1 conv; an odd
  side is padded, and the way up crops it back);
- up: a 1x1 conv to 4x the finer width, pixel shuffle x2, added to the skip;
- residual blocks with channel attention, as in the mobile generator, on the
  way down (`blocks[i]` at level i) and one on the way up at each finer level.

With the defaults: 1.94 M parameters and 2.11 GMAC at 256x256; the receptive
field covers the whole 256x256 crop. Builtin TFLite ops only; the tail conv and
the last conv of each block start at zero, so the untrained network is the
identity.
"""

import keras

from keras_deblur.layers import CropToMatch, DepthToSpace
from keras_deblur.models.mobile_generator import conv, residual_block, shuffle_head, shuffle_tail

LEVELS = 3


def _blocks(x, count, name):
    for index in range(1, count + 1):
        x = residual_block(x, f"{name}_{index}", channel_attention=True)
    return x


def _up(x, skip, level):
    """1x1 conv to 4x the skip's width, pixel shuffle x2, cropped to the skip, plus the skip."""
    x = conv(4 * skip.shape[-1], 1, f"up_{level}_conv")(x)
    x = DepthToSpace(2, name=f"up_{level}_shuffle")(x)
    x = CropToMatch(name=f"up_{level}_crop")([x, skip])
    return keras.layers.Add(name=f"up_{level}_add")([x, skip])


def build_mobile_unet_generator(
    widths=(64, 112, 144),
    blocks=(2, 2, 2),
    image_shape=(None, None, 3),
    name="mobile_unet_deblur_generator",
):
    """Builds the three-level U-Net generator as a Keras functional model.

    Args:
        widths: 3 ints. Channels at 1/4, 1/8 and 1/16 resolution.
            Defaults to (64, 112, 144).
        blocks: 3 ints. Residual blocks on the way down at each level (one
            more on the way up at the two finer ones). Defaults to (2, 2, 2).
        image_shape: tuple. Input shape without the batch axis. Defaults to
            `(None, None, 3)`: any height and width that are multiples of 4
            (`keras_deblur.inference.deblur` pads other sizes).
        name: str. Model name.

    Returns:
        A `keras.Model` mapping blurred images `(batch, height, width, 3)` in
        [-1, 1] to deblurred images of the same shape in [-1, 1]. Untrained,
        it returns its input unchanged.
    """
    if len(widths) != LEVELS or len(blocks) != LEVELS or min(widths) < 8 or min(blocks) < 0:
        raise ValueError(
            f"widths and blocks must be {LEVELS} ints (widths >= 8, blocks >= 0). "
            f"Received: widths={widths}, blocks={blocks}"
        )
    blurred = keras.Input(shape=image_shape, name="blurred")
    x = shuffle_head(blurred, widths[0])
    skips = []
    for level, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        if level:
            x = conv(width, 2, f"down_{level}", strides=2, activation="relu")(x)
        x = _blocks(x, count, f"enc_{level}")
        skips.append(x)
    for level in reversed(range(LEVELS - 1)):
        x = _up(x, skips[level], level)
        x = _blocks(x, 1, f"dec_{level}")
    return keras.Model(blurred, shuffle_tail(x, blurred), name=name)
