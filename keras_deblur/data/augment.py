"""Augmentations of sharp training photos and degradations of blurred ones.

Augmentations change the sharp photo before it is blurred, so that a few
photos show the network more scales, orientations and colours: random
downscaling (area interpolation), the eight flips and 90-degree rotations,
and mild colour, brightness and gamma changes. Degradations happen to the
blurred image only, after the blur, as in a phone: JPEG compression here, and
sensor noise in `motion_blur.synthesize_blur` (`noise_std`, `shot_noise`).
Every function takes a `numpy.random.Generator`, or is deterministic.
"""

import cv2
import numpy as np

# Random downscaling of photos, as a factor of their size.
RESCALE_RANGE = (0.5, 1.0)
# Mild colour jitter: a gain per channel, an overall brightness gain and a gamma.
CHANNEL_GAIN_RANGE = (0.9, 1.1)
BRIGHTNESS_RANGE = (0.8, 1.2)
GAMMA_RANGE = (0.8, 1.25)


def draw_rescale(rng, shape, scale_range=RESCALE_RANGE, min_side=None):
    """The size a random downscale gives an image of `shape`: the draw of `random_rescale`.

    Args:
        rng: `numpy.random.Generator`.
        shape: the image's shape, `(height, width, ...)`.
        scale_range: `(low, high)`, with `0 < low <= high <= 1`. The factor is
            drawn log-uniformly from it. Defaults to `RESCALE_RANGE`.
        min_side: int or None. The shorter side never drops below this (nor
            below its size if it is already shorter). Defaults to None.

    Returns:
        `(height, width)` of the downscaled image; `shape[:2]` when the factor is 1.
    """
    low, high = scale_range
    scale = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    height, width = shape[:2]
    if min_side:
        scale = max(scale, min(min_side / min(height, width), 1.0))
    return max(round(height * scale), 1), max(round(width * scale), 1)


def random_rescale(image, rng, scale_range=RESCALE_RANGE, min_side=None):
    """Downscales an image by a random factor, with area interpolation.

    Args:
        image: array `(height, width[, channels])`.
        rng: `numpy.random.Generator`.
        scale_range, min_side: see `draw_rescale`.

    Returns:
        The rescaled image, same dtype; `image` itself when the factor is 1.
    """
    height, width = draw_rescale(rng, image.shape, scale_range, min_side)
    if (height, width) == image.shape[:2]:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def rescale_region(image, size, region):
    """One region of `image` resized to `size`, from the source pixels under it only.

    What `cv2.resize(image, size, INTER_AREA)` gives in `region`, at the same
    scale and as sharp, but with the region's sampling grid moved by less
    than one source pixel so that it starts on one, and for the cost of the
    region instead of the whole photo. The same pixels where the region
    starts on a source pixel already (e.g. scale 1/2, even offsets).

    Args:
        image: array `(height, width[, channels])`.
        size: `(height, width)` of the whole resized image, at most the
            image's (a downscale, e.g. from `draw_rescale`).
        region: `(top, left, height, width)` in the resized image's pixels.

    Returns:
        Array `(region height, region width[, channels])`, `image`'s dtype.
    """
    top, left, height, width = region
    rows = _source_span(top, height, size[0], image.shape[0])
    cols = _source_span(left, width, size[1], image.shape[1])
    fy, fx = size[0] / image.shape[0], size[1] / image.shape[1]
    part = cv2.resize(
        image[rows[0] : rows[1], cols[0] : cols[1]],
        None,
        fx=fx,
        fy=fy,
        interpolation=cv2.INTER_AREA,
    )
    # The part's first row is the resized image's row `rows[0] * fy`.
    row = min(max(round(top - rows[0] * fy), 0), part.shape[0] - height)
    col = min(max(round(left - cols[0] * fx), 0), part.shape[1] - width)
    return part[row : row + height, col : col + width]


def _source_span(start, length, resized, full):
    """The source pixels `[first, last)` under resized pixels `[start, start + length)`.

    Integer arithmetic, so that a start on a source pixel is not lost to rounding;
    area filters reach no further than the pixels under them.
    """
    first = start * full // resized
    return first, min(-(-(start + length) * full // resized), full)


def colour_table(rng):
    """A random colour, brightness and gamma change as a lookup table; see `jitter_colours`.

    Returns:
        uint8 array `(256, 1, 3)` for `cv2.LUT`.
    """
    gains = rng.uniform(*CHANNEL_GAIN_RANGE, 3) * rng.uniform(*BRIGHTNESS_RANGE)
    gamma = np.exp(rng.uniform(np.log(GAMMA_RANGE[0]), np.log(GAMMA_RANGE[1])))
    levels = (np.arange(256) / 255.0) ** gamma
    table = np.clip(np.rint(255.0 * levels[:, None] * gains[None, :]), 0, 255).astype(np.uint8)
    return table[:, None, :]


def jitter_colours(image, rng, table=None):
    """Mild random colour, brightness and gamma change of a uint8 RGB image.

    Each channel `c` becomes `255 * gain_c * brightness * (value / 255) ** gamma`,
    clipped, with `gain_c` from `CHANNEL_GAIN_RANGE`, `brightness` from
    `BRIGHTNESS_RANGE` and `gamma` log-uniform in `GAMMA_RANGE`.

    Args:
        image: uint8 array `(height, width, 3)`.
        rng: `numpy.random.Generator`.
        table: array from `colour_table` or None. A change drawn earlier (to
            apply it to a part of the image drawn later); None draws one.
            Defaults to None.

    Returns:
        uint8 array of the same shape.
    """
    table = colour_table(rng) if table is None else table
    return cv2.LUT(np.ascontiguousarray(image), table)


def random_dihedral(rng, *images):
    """Applies one of the 8 flips and 90-degree rotations, the same to every image.

    Args:
        rng: `numpy.random.Generator`.
        *images: arrays `(height, width, ...)` of the same height and width.

    Returns:
        A tuple of the transformed images (height and width swap on odd
        rotations).
    """
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    transformed = []
    for image in images:
        image = np.rot90(image, turns, axes=(0, 1))
        transformed.append(np.ascontiguousarray(image[:, ::-1] if flip else image))
    return tuple(transformed)


def jpeg_compress(image, quality):
    """Round-trips a uint8 RGB image through JPEG at a given quality (OpenCV's libjpeg).

    Args:
        image: uint8 array `(height, width, 3)`, RGB.
        quality: int in [1, 100].

    Returns:
        uint8 array of the same shape, RGB.
    """
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
