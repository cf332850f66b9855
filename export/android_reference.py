"""Python twin of the Android sample's pre/post-processing and tiling.

`export/android/app/src/main/java/org/kerasdeblur/sample/Deblurrer.kt` cannot
be built or run on our machines, so this module repeats its arithmetic step
for step (same float32 operations, same rounding, same tile grid and blending
weights), and the tests check it against the Keras model. When you change one
file, change the other.

The Kotlin code, and therefore this module:

- reads an ARGB_8888 `Bitmap` as packed `0xAARRGGBB` ints (`getPixels`);
- maps each channel to the model range with `c * (2f / 255f) - 1f`;
- cuts the photo into tiles of the model's fixed input size, starting every
  `tile - overlap` pixels with the last tile flush with the far edge (the
  grid of `keras_deblur.inference.predict_tiled`); a photo side shorter than
  the tile is reflect-padded up to it;
- blends the tiles with weights that ramp linearly over `overlap` pixels at
  each tile border (`(i + 0.5f) / rise`), normalising by the summed weights;
- maps back with `floor((v + 1f) * 127.5f + 0.5f)` clamped to 0..255
  (Kotlin's `roundToInt` rounds halves up) and keeps the input alpha.
"""

import numpy as np

# The tile grid and blending weights are the library's own, which the Kotlin
# `Deblurrer.tileStarts` and `Deblurrer.ramp` reproduce.
from keras_deblur.inference import blend_ramp, tile_starts

_SCALE = np.float32(2.0 / 255.0)


def pack_argb(rgb, alpha=None):
    """RGB uint8 `(H, W, 3)` (+ optional alpha `(H, W)`) -> int32 ARGB `(H, W)`, as `getPixels`."""
    rgb = np.asarray(rgb, np.uint8).astype(np.uint32)
    alpha = np.full(rgb.shape[:2], 255, np.uint32) if alpha is None else alpha.astype(np.uint32)
    packed = (alpha << 24) | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed.view(np.int32)


def unpack_argb(pixels):
    """int32 ARGB `(H, W)` -> `(rgb uint8 (H, W, 3), alpha uint8 (H, W))`."""
    pixels = np.asarray(pixels, np.int32).view(np.uint32)
    rgb = np.stack([(pixels >> shift) & 0xFF for shift in (16, 8, 0)], axis=-1)
    return rgb.astype(np.uint8), ((pixels >> 24) & 0xFF).astype(np.uint8)


def pixels_to_input(pixels):
    """ARGB ints -> float32 `(H, W, 3)` in [-1, 1] (`Deblurrer.fillInput`)."""
    rgb, _ = unpack_argb(pixels)
    return rgb.astype(np.float32) * _SCALE - np.float32(1.0)


def to_channel(values):
    """Model-range floats -> 0..255 ints, rounding halves up (`Deblurrer.toChannel`)."""
    values = np.asarray(values, np.float32)
    scaled = (values + np.float32(1.0)) * np.float32(127.5) + np.float32(0.5)
    return np.clip(np.floor(scaled), 0, 255).astype(np.uint32)


def output_to_pixels(values, alpha):
    """float32 `(H, W, 3)` in [-1, 1] + alpha `(H, W)` -> ARGB ints."""
    channels = to_channel(values)
    alpha = np.asarray(alpha).astype(np.uint32)
    packed = (alpha << 24) | (channels[..., 0] << 16) | (channels[..., 1] << 8) | channels[..., 2]
    return packed.view(np.int32)


def reflect_index(index, size):
    """Mirror an index into `[0, size)` without repeating the edge (`Deblurrer.reflect`).

    Periodic, so it also covers pads longer than the side (what `np.pad(...,
    mode="reflect")` gives).
    """
    index = np.asarray(index)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index < size, index, period - index)


def deblur_pixels(run_model, pixels, tile_size, overlap=32):
    """Deblurs an ARGB photo exactly as `Deblurrer.deblur` does.

    Args:
        run_model: callable, float32 `(1, tile_h, tile_w, 3)` in [-1, 1] ->
            same shape (a `TFLiteGenerator`, or a Keras model's
            `predict_on_batch`).
        pixels: int32 `(H, W)` packed ARGB.
        tile_size: `(tile_h, tile_w)`, the model's input size.
        overlap: int. Tile overlap in pixels, < half the tile. Defaults to 32.

    Returns:
        int32 `(H, W)` packed ARGB, alpha unchanged.
    """
    tile_h, tile_w = tile_size
    if not 0 <= overlap < min(tile_h, tile_w) // 2:
        raise ValueError(f"overlap must be in [0, tile / 2). Received: overlap={overlap}")
    pixels = np.asarray(pixels, np.int32)
    height, width = pixels.shape
    _, alpha = unpack_argb(pixels)
    floats = pixels_to_input(pixels)
    total = np.zeros((height, width, 3), np.float32)
    weights = np.zeros((height, width, 1), np.float32)
    for top in tile_starts(height, tile_h, overlap):
        for left in tile_starts(width, tile_w, overlap):
            rows = min(tile_h, height - top)
            cols = min(tile_w, width - left)
            source_y = top + reflect_index(np.arange(tile_h), rows)
            source_x = left + reflect_index(np.arange(tile_w), cols)
            tile = floats[source_y[:, None], source_x[None, :]]
            output = np.asarray(run_model(tile[None]), np.float32)[0, :rows, :cols]
            window = np.outer(blend_ramp(rows, overlap), blend_ramp(cols, overlap))[:, :, None]
            total[top : top + rows, left : left + cols] += output * window
            weights[top : top + rows, left : left + cols] += window
    return output_to_pixels(total / weights, alpha)


def deblur_rgb(run_model, rgb, tile_size, overlap=32):
    """`deblur_pixels` for a uint8 RGB `(H, W, 3)` array; returns uint8 RGB."""
    return unpack_argb(deblur_pixels(run_model, pack_argb(rgb), tile_size, overlap))[0]
