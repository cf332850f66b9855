"""Deblurring photos of any size with a trained generator.

The generator needs heights and widths that are multiples of 4 (two stride-2
levels), and a few pixels more than its reflection pads. `deblur` reflect-pads
the photo (to multiples of 64: `SHAPE_BUCKET`), runs the network and crops
back, so any photo of at least 2x2 pixels works. Large photos are processed in
overlapping tiles blended with linear ramps, which bounds memory; because
InstanceNorm normalises each tile with its own statistics, a tiled result
differs slightly from a full pass (measured in tests/test_inference.py, see
the README for the figure).

A model with a fixed input size (a `.tflite` exported at 256x256, or a Keras
model built for one size) is always run in tiles of exactly that size, the
photo's edges mirrored up to it where the photo is smaller.
"""

import math

import numpy as np

# Two stride-2 levels: the network maps H x W to H x W only for multiples of 4.
SIZE_MULTIPLE = 4
# The residual blocks reflect-pad by 1 at 1/4 resolution, which needs >= 2
# pixels there: 8 pixels at full resolution.
MIN_NETWORK_SIZE = 8
MIN_IMAGE_SIDE = 2
# Above this many pixels `deblur` tiles by default: a full pass over 4 MP
# keeps tens of 64-channel float32 maps alive (several GB).
AUTO_TILE_MAX_PIXELS = 2048 * 2048
DEFAULT_TILE_SIZE = 1024
# Whole photos are padded further, to multiples of this, so that a folder of
# photos of many sizes runs the network at few shapes: TensorFlow's oneDNN
# kernels keep primitives for every input shape they meet (about 0.5 MB each
# for the mobile generator), and one shape per photo grew a 1,000-photo run
# by 300 MB (bench/bench_soak.py). Tiles are already of one size.
SHAPE_BUCKET = 64
DEFAULT_TILE_OVERLAP = 64


def to_model_range(image):
    """Maps a uint8 (or uint16) image to float32 in [-1, 1]."""
    image = np.asarray(image)
    peak = 65535.0 if image.dtype == np.uint16 else 255.0
    # In place: one float copy of a 12-MP photo is 144 MB.
    floats = image.astype(np.float32)
    floats *= 2.0 / peak
    floats -= 1.0
    return floats


def from_model_range(image, dtype=np.uint8):
    """Maps float values in [-1, 1] back to uint8 (or uint16), rounding and clipping."""
    peak = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    scaled = np.asarray(image, dtype=np.float32) + 1.0
    scaled *= peak / 2.0  # in place, as in to_model_range
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, peak, out=scaled)
    return scaled.astype(dtype)


def _check_image(image):
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array. Received: type={type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            "image must be uint8 or uint16 (convert floats with "
            f"keras_deblur.inference.from_model_range). Received: dtype={image.dtype}"
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(
            "image must be (height, width) or (height, width, 1|3|4). "
            f"Received: shape={image.shape}"
        )
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"image must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels. "
            f"Received: shape={image.shape}"
        )


def _split_channels(image):
    """Returns (rgb, alpha or None) for gray, gray+1, RGB or RGBA input."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2), None
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2), None
    if image.shape[2] == 4:
        return image[:, :, :3], image[:, :, 3:]
    return image, None


def _merge_channels(rgb, alpha, like):
    """Puts the result back in the layout of the input `like`."""
    if like.ndim == 2 or like.shape[2] == 1:
        # The three channels were identical on input; their mean is the gray result.
        gray = np.rint(rgb.astype(np.float32).mean(axis=2)).astype(like.dtype)
        return gray if like.ndim == 2 else gray[:, :, None]
    if alpha is not None:
        return np.concatenate([rgb, alpha], axis=2)
    return rgb


def padding_for(height, width, multiple=SIZE_MULTIPLE):
    """Bottom/right padding that makes (height, width) acceptable to the network.

    Args:
        height, width: int. The image's size.
        multiple: int. A multiple of 4 the padded sides are rounded up to.

    Returns:
        `(pad_height, pad_width)` such that the padded sides are multiples of
        `multiple` and at least 8 pixels.
    """

    def pad(side):
        target = max(MIN_NETWORK_SIZE, math.ceil(side / multiple) * multiple)
        return target - side

    return pad(height), pad(width)


def fixed_input_size(model):
    """The `(height, width)` a model only takes, or None when it takes any size.

    Reads `model.input_shape`, which Keras models and
    `keras_deblur.models.tflite_generator.TFLiteGenerator` both have:
    `(None, None, None, 3)` for any size, `(None, 256, 256, 3)` for one.
    """
    shape = getattr(model, "input_shape", None)
    if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def predict_padded(model, image, multiple=SIZE_MULTIPLE, input_size=None):
    """Runs the generator on one float image of any size >= 2x2.

    Args:
        model: the generator (`keras.Model` or anything with
            `predict_on_batch`).
        image: float32 array `(height, width, 3)` in [-1, 1].
        multiple: int. Without `input_size`, reflect-pad the sides to multiples
            of this (a multiple of 4; see `SHAPE_BUCKET`).
        input_size: `(height, width)` the model takes, at least the image's;
            None pads to multiples of `multiple` (`padding_for`).

    Returns:
        float32 array `(height, width, 3)` in [-1, 1].
    """
    height, width = image.shape[:2]
    if input_size is None:
        pad_h, pad_w = padding_for(height, width, multiple)
    else:
        pad_h, pad_w = input_size[0] - height, input_size[1] - width
    # numpy's reflect repeats the reflection when the pad exceeds the side,
    # which small inputs need.
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    output = model.predict_on_batch(padded[None])
    return np.asarray(output)[0, :height, :width, :]


def tile_starts(size, tile, overlap, multiple=1):
    """Origins of tiles of side `tile` overlapping by `overlap` along a side of `size`.

    The last tile is aligned with the end, so every pixel is covered. With
    `multiple` > 1 every origin is a multiple of it (steps shrink, overlaps
    grow, and the last tile may run up to `multiple - 1` pixels past the end,
    to be padded): a network that groups pixels into cells (the mobile
    generator's pixel unshuffle by 4) then sees the same cells in every tile
    as in one pass over the photo.
    """
    if size <= tile:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    last = math.ceil((size - tile) / multiple) * multiple
    return [*range(0, last, step), last]


def even_tile_side(size, tile, overlap):
    """The shortest tile side (a multiple of 4, at most `tile`) that covers `size` with no
    more tiles than `tile` needs.

    Tiles of exactly `tile` waste up to a tile's worth of work where the last one
    overlaps its neighbour by far more than `overlap`; spreading the same number
    evenly does not (a 4000x3000 photo in 1024-pixel tiles: 5x4 tiles of 852x800
    pixels instead of 1024x1024, 1.5x fewer pixels through the network).
    """
    if size <= tile:
        return tile
    count = math.ceil((size - overlap) / (tile - overlap))
    side = math.ceil((size + (count - 1) * overlap) / count / SIZE_MULTIPLE) * SIZE_MULTIPLE
    return min(tile, side)


def blend_ramp(length, overlap):
    """1-D blending weights: rise over `overlap` pixels at each end, never 0."""
    ramp = np.ones(length, np.float32)
    rise = min(overlap, length // 2)
    if rise > 0:
        edge = (np.arange(rise, dtype=np.float32) + 0.5) / rise
        ramp[:rise] = edge
        ramp[length - rise :] = edge[::-1]
    return ramp


def predict_tiled(
    model, image, tile_size=DEFAULT_TILE_SIZE, tile_overlap=DEFAULT_TILE_OVERLAP, input_size=None
):
    """Runs the generator on overlapping tiles and blends them.

    Memory stays bounded by one tile's activations plus two float32 images
    (the weighted sum and the weights). Tiles overlap by `tile_overlap` pixels
    and are blended with weights that ramp linearly across the overlap, so no
    seam shows where InstanceNorm statistics change from tile to tile.

    Args:
        model: the generator.
        image: float32 `(height, width, 3)` in [-1, 1].
        tile_size: int. Largest tile side, a multiple of 4 >= 16; the tiles
            actually used are evened out (`even_tile_side`). Ignored when
            `input_size` is given.
        tile_overlap: int. Overlap between neighbouring tiles, < half a tile.
        input_size: `(height, width)` of a fixed-size model: the tiles, and
            what tiles cut short by a smaller image are mirrored up to.

    Returns:
        float32 `(height, width, 3)` in [-1, 1].
    """
    height, width = image.shape[:2]
    if input_size is None:
        if tile_size < 16 or tile_size % SIZE_MULTIPLE:
            raise ValueError(f"tile_size must be a multiple of 4 and >= 16. Received: {tile_size}")
        tile_h, tile_w = tile_size, tile_size
    else:
        tile_h, tile_w = input_size
    if not 0 <= tile_overlap < min(tile_h, tile_w) // 2:
        raise ValueError(
            f"tile_overlap must be in [0, tile_size / 2). Received: tile_overlap={tile_overlap}, "
            f"tile_size={tile_h}x{tile_w}"
        )
    if input_size is None:
        tile_h = even_tile_side(height, tile_h, tile_overlap)
        tile_w = even_tile_side(width, tile_w, tile_overlap)
    total = np.zeros((height, width, 3), np.float32)
    weights = np.zeros((height, width, 1), np.float32)
    for top in tile_starts(height, tile_h, tile_overlap, SIZE_MULTIPLE):
        for left in tile_starts(width, tile_w, tile_overlap, SIZE_MULTIPLE):
            tile = image[top : top + tile_h, left : left + tile_w]
            output = predict_padded(model, tile, input_size=input_size)
            rows, cols = tile.shape[:2]
            window = np.outer(blend_ramp(rows, tile_overlap), blend_ramp(cols, tile_overlap))
            total[top : top + rows, left : left + cols] += output * window[:, :, None]
            weights[top : top + rows, left : left + cols] += window[:, :, None]
    total /= weights  # in place: one photo-sized float32 array less at the peak
    return total


def _predict(model, floats, tile_size, tile_overlap):
    """Chooses between one padded pass and tiles (see `deblur`'s arguments)."""
    height, width = floats.shape[:2]
    input_size = fixed_input_size(model)
    if input_size is not None:
        if tile_size is not None:
            raise ValueError(
                f"this model takes {input_size[0]}x{input_size[1]} inputs only, so it runs in "
                f"tiles of that size; leave tile_size unset. Received: tile_size={tile_size}"
            )
        return predict_tiled(
            model,
            floats,
            tile_overlap=_overlap(tile_overlap, min(input_size)),
            input_size=input_size,
        )
    if tile_size is None:
        tile_size = DEFAULT_TILE_SIZE if height * width > AUTO_TILE_MAX_PIXELS else 0
    if tile_size and max(height, width) > tile_size:
        return predict_tiled(model, floats, tile_size, _overlap(tile_overlap, tile_size))
    return predict_padded(model, floats, SHAPE_BUCKET)


def _overlap(tile_overlap, tile_side):
    """The overlap asked for, or 64 capped at a quarter of the tile: small tiles keep a step
    and the work per pixel stays under twice a full pass."""
    if tile_overlap is not None:
        return tile_overlap
    return min(DEFAULT_TILE_OVERLAP, tile_side // 4)


def deblur(model, image, tile_size=None, tile_overlap=None):
    """Deblurs one photo with a DeblurGAN generator.

    Args:
        model: the generator, e.g. from `keras_deblur.load_generator`.
        image: `np.ndarray`, uint8 or uint16, `(height, width)` gray,
            `(height, width, 1|3|4)` gray/RGB/RGBA, at least 2x2 pixels.
            RGB order (as `keras_deblur.data.images.read_image` returns).
        tile_size: int or None. Process in overlapping square tiles of this
            side (a multiple of 4). None tiles only photos above 4 megapixels
            (with 1024-pixel tiles); 0 never tiles. A model with a fixed
            input size (`fixed_input_size`) always runs in tiles of that
            size: `tile_size` must then be None.
        tile_overlap: int or None. Overlap between tiles in pixels. None is
            64, capped at a quarter of a tile under 256 pixels (an overlap
            must stay under half a tile) or of a fixed-size model's shorter
            side. Defaults to None.

    Returns:
        `np.ndarray` with the shape and dtype of `image`. Gray input gives gray
        output; the alpha channel of RGBA input is passed through unchanged.

    Raises:
        TypeError, ValueError: for non-arrays, other dtypes, other channel
            counts, images smaller than 2x2, or a `tile_size` for a
            fixed-size model.

    Example:
    >>> sharp = deblur(generator, read_image("blurred.jpg"))
    """
    _check_image(image)
    rgb, alpha = _split_channels(image)
    output = _predict(model, to_model_range(rgb), tile_size, tile_overlap)
    result = from_model_range(output, dtype=image.dtype)
    return _merge_channels(result, alpha, image)
