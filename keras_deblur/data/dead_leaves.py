"""Procedural sharp images from the dead-leaves model: training data without limit.

Achddou, Gousseau and Ladjal, "Synthetic images as a regularity prior for image
restoration neural networks", SSVM 2021, train restoration networks on
dead-leaves images: opaque shapes ("leaves") fall on the canvas one after the
other and hide what lies below, with radii drawn from a power law
`p(r) ~ r^-alpha` between `rmin` and `rmax`. With `alpha = 3` the picture has
the same statistics at every scale, like natural images, and its edges are
sharp occlusion boundaries. Their later VibrantLeaves generator (Achddou et
al., 2025) adds shapes other than disks, textures inside the leaves and a
model of acquisition, and reaches near natural-image performance for
denoising and super-resolution.

This generator follows those ideas:
- disks, anisotropic ellipses and rectangles, and star-shaped polygons, all
  with the area of a disk of radius `r`, at random orientations;
- flat leaves, and leaves with a linear colour ramp, a grating (sine to
  square wave), fine 1/f noise or smooth, defocused-looking noise between two
  colours, while every edge stays sharp;
- colours drawn from a palette (e.g. pixels of photos, see `photo_palette`)
  or from an HSV distribution biased towards muted colours;
- optional supersampling, so that edges are anti-aliased as a camera's pixel
  area would make them, instead of staircases no photo has.

Leaves are painted back to front until the canvas is covered `coverage` times
on average. Leaves under 4 `rmin` of radius, the vast majority, are stamped
in vectorised numpy as disks; the rest are drawn one by one with OpenCV. The
colour of every pixel is then computed in one pass from a table of per-leaf
parameters. Everything is seeded through a `numpy.random.Generator`.
"""

import functools
import logging
import math

import cv2
import numpy as np

from keras_deblur.data.images import ImageReadError, read_image, to_rgb_uint8

logger = logging.getLogger(__name__)

SHAPES = ("disk", "ellipse", "rectangle", "polygon")
TEXTURES = ("gradient", "grating", "noise", "smooth")
# Leaves under this many times `rmin` (rmin counted as 1 pixel at least) are
# stamped as disks in numpy; larger ones are drawn one by one by OpenCV.
_STAMP_RADIUS = 4.0
# Stamped radii are rounded to this step.
_STAMP_STEP = 0.5
# Leaf centres fall up to this fraction of the canvas outside it, so that its
# borders are covered like its middle.
_BORDER = 0.1
# The largest aspect ratio (long / short axis) of ellipses and rectangles.
_MAX_ASPECT = 4.0
# Polygons have up to this many vertices.
_VERTICES = 7
# Half the side of a square of area pi: rectangles have the area of a disk of their radius.
_HALF_SIDE = 0.5 * math.sqrt(math.pi)
# Columns of the per-leaf parameter table.
_CX, _CY, _UX, _UY, _SLOPE, _GRATING, _FREQUENCY, _PHASE, _SHARPNESS = range(9)
_FINE, _SMOOTH, _C0, _C1 = 9, 10, 11, 14
_COLUMNS = 17


def sample_radii(rng, count, rmin=1.0, rmax=256.0, alpha=3.0):
    """Draws leaf radii with density proportional to `r^-alpha` on `[rmin, rmax]`.

    Args:
        rng: `numpy.random.Generator`.
        count: int. Number of radii.
        rmin: float. Smallest radius in pixels, > 0. Defaults to 1.
        rmax: float. Largest radius in pixels, >= `rmin`. Defaults to 256.
        alpha: float. Power-law exponent; 3 gives scale invariance. Defaults to 3.

    Returns:
        `np.ndarray` float64 `(count,)`.
    """
    u = rng.random(count)
    if math.isclose(alpha, 1.0):
        return rmin * (rmax / rmin) ** u
    power = 1.0 - alpha
    low, high = rmin**power, rmax**power
    return (low + u * (high - low)) ** (1.0 / power)


def _random_colours(rng, count, palette):
    """`(count, 3)` float32 RGB in [0, 1]: palette rows, or HSV draws favouring muted colours."""
    if palette is not None:
        return palette[rng.integers(len(palette), size=count)].astype(np.float32) / 255.0
    if count == 0:
        return np.zeros((0, 3), np.float32)
    u = rng.random((count, 3), dtype=np.float32)
    # Saturation has density 2(1 - s) (Beta(1, 2)): most natural surfaces are
    # weakly saturated; value 0.05 + 0.95 sqrt(u) (Beta(2, 1)) leans bright.
    hsv = np.stack([360.0 * u[:, 0], 1.0 - np.sqrt(u[:, 1]), 0.05 + 0.95 * np.sqrt(u[:, 2])], 1)
    return cv2.cvtColor(hsv[:, None, :], cv2.COLOR_HSV2RGB)[:, 0, :]


def _noise_field(rng, height, width, finest):
    """Zero-mean, unit-std noise whose octaves, from `finest` pixels up, double in amplitude.

    Built coarse to fine: upsample the field (`cv2.pyrUp`), double it and add
    white noise, down to the `finest` octave, then resize to the canvas. The
    amplitude grows with the scale, like natural images' 1/f spectrum.
    """
    level = max(int(math.ceil(math.log2(max(height, width)))) - 2, 1)  # 2**level pixels a cell
    field = rng.standard_normal((height // 2**level + 2, width // 2**level + 2))
    field = field.astype(np.float32)
    while level > 0 and 2 ** (level - 1) >= finest:
        field = 2.0 * cv2.pyrUp(field)
        field += rng.standard_normal(field.shape, dtype=np.float32)
        level -= 1
    if level:
        # Only the cells the canvas needs, plus the cubic filter's reach: the
        # same pixels as upscaling the whole field and cropping, for less work.
        rows = min(field.shape[0], -(-height >> level) + 3)
        cols = min(field.shape[1], -(-width >> level) + 3)
        size = (cols << level, rows << level)
        field = cv2.resize(field[:rows, :cols], size, interpolation=cv2.INTER_CUBIC)
    field = field[:height, :width]
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def _leaf_table(rng, radii, centres, texture_ratio, palette, pixel):
    """Per-leaf appearance parameters, one row a leaf (see the `_CX`... columns).

    `pixel` is the size of an output pixel on the canvas (the supersampling factor).
    """
    count = radii.size
    table = np.zeros((count, _COLUMNS), np.float32)
    table[:, _CX], table[:, _CY] = centres[:, 0], centres[:, 1]
    angle = rng.uniform(0.0, 2.0 * np.pi, count)
    table[:, _UX], table[:, _UY] = np.cos(angle), np.sin(angle)
    table[:, _C0:_C1] = _random_colours(rng, count, palette)
    table[:, _C1:] = table[:, _C0:_C1]
    textured = np.flatnonzero(rng.random(count) < texture_ratio)
    kind = rng.integers(len(TEXTURES), size=textured.size)
    # The second colour: another colour, or a shade of the first.
    other = _random_colours(rng, textured.size, palette)
    shade = table[textured, _C0:_C1] * rng.uniform(0.2, 0.8, (textured.size, 1)).astype(np.float32)
    table[textured, _C1:] = np.where(rng.random((textured.size, 1)) < 0.5, other, shade)
    radius = radii[textured]
    ramp = textured[kind == 0]
    table[ramp, _SLOPE] = rng.uniform(0.5, 1.0, ramp.size) / (2.0 * radii[ramp])
    grating = textured[kind == 1]
    # Periods from 2.5 output pixels (below Nyquist) to the leaf's radius, log-uniform.
    shortest = 2.5 * pixel
    longest = np.maximum(radius[kind == 1], 1.6 * shortest)
    period = np.exp(rng.uniform(np.log(shortest), np.log(longest)))
    table[grating, _GRATING] = 0.5
    table[grating, _FREQUENCY] = 2.0 * np.pi / period
    table[grating, _PHASE] = rng.uniform(0.0, 2.0 * np.pi, grating.size)
    table[grating, _SHARPNESS] = np.exp(rng.uniform(0.0, np.log(8.0), grating.size))
    table[textured[kind == 2], _FINE] = rng.uniform(0.15, 0.5, np.sum(kind == 2))
    table[textured[kind == 3], _SMOOTH] = rng.uniform(0.2, 0.6, np.sum(kind == 3))
    return table


@functools.lru_cache(maxsize=64)
def _disk_offsets(step):
    """`(dy, dx)` int64 of the pixels within `step * _STAMP_STEP` of a disk's centre pixel."""
    radius = step * _STAMP_STEP
    reach = int(radius)
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = dx**2 + dy**2 <= radius**2 + 1e-9
    return dy[inside], dx[inside]


def _stamp_small(labels, centres, radii, ids):
    """Paints small leaves as disks in vectorised numpy: each pixel keeps the highest label.

    Disks are stamped on a canvas padded by twice the largest disk's reach, so
    no pixel needs a bounds check; leaves whose centre lies farther than that
    reach outside the canvas cannot touch it and are dropped first.
    """
    if radii.size == 0:
        return
    height, width = labels.shape
    steps = np.maximum(np.rint(radii / _STAMP_STEP), 1).astype(np.int64)
    reach = int(steps.max() * _STAMP_STEP)
    cx = np.rint(centres[:, 0]).astype(np.int64)
    cy = np.rint(centres[:, 1]).astype(np.int64)
    near = (cx >= -reach) & (cx < width + reach) & (cy >= -reach) & (cy < height + reach)
    steps, ids = steps[near], ids[near]
    pad = 2 * reach
    padded = np.pad(labels, pad)
    padded_width = width + 2 * pad
    origins = (cy[near] + pad) * padded_width + (cx[near] + pad)
    flat = padded.reshape(-1)
    for step in np.unique(steps).tolist():
        dy, dx = _disk_offsets(step)
        chosen = steps == step
        index = origins[chosen, None] + (dy * padded_width + dx)[None, :]
        np.maximum.at(flat, index.reshape(-1), np.repeat(ids[chosen], dy.size))
    labels[...] = padded[pad : pad + height, pad : pad + width]


def _outlines(rng, kinds, radii, angles, centres, stretch):
    """Vertices of the rectangles and polygons, `(n, 7, 2)` int32 (other kinds' rows unused).

    Rectangles have an aspect ratio of `stretch ** 2`; polygons are star-shaped
    with 3 to 7 vertices (repeated vertices pad them to 7). Both have the area
    of a disk of their radius.
    """
    count = radii.size
    angle = np.sort(rng.uniform(0.0, 2.0 * np.pi, (count, _VERTICES)), axis=1)
    reach = rng.uniform(0.6, 1.0, (count, _VERTICES))
    sides = rng.integers(3, _VERTICES + 1, count)
    last = np.minimum(np.arange(_VERTICES)[None, :], sides[:, None] - 1)
    angle = np.take_along_axis(angle, last, axis=1)
    reach = np.take_along_axis(reach, last, axis=1)
    x, y = reach * np.cos(angle), reach * np.sin(angle)
    half_x, half_y = stretch[:, None] * _HALF_SIDE, _HALF_SIDE / stretch[:, None]
    rectangle = (kinds == SHAPES.index("rectangle"))[:, None]
    corners_x = np.array([-1, 1, 1, -1, -1, -1, -1], np.float64)
    corners_y = np.array([-1, -1, 1, 1, 1, 1, 1], np.float64)
    x = np.where(rectangle, half_x * corners_x, x)
    y = np.where(rectangle, half_y * corners_y, y)
    area = 0.5 * np.abs(np.sum(x * np.roll(y, 1, axis=1) - y * np.roll(x, 1, axis=1), axis=1))
    scale = (radii * np.sqrt(np.pi / np.maximum(area, 1e-3)))[:, None]
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    points_x = scale * (x * cos - y * sin) + centres[:, :1]
    points_y = scale * (x * sin + y * cos) + centres[:, 1:]
    return np.rint(np.stack([points_x, points_y], axis=2)).astype(np.int32)


def _draw_large(rng, labels, centres, radii, angles, shapes, ids):
    """Draws leaves one by one, in order, with OpenCV (later ones on top)."""
    allowed = np.array([SHAPES.index(shape) for shape in shapes])
    kinds = allowed[rng.integers(len(shapes), size=radii.size)]
    # Ellipses and rectangles: axes r * stretch and r / stretch, aspect ratio up to _MAX_ASPECT.
    stretch = np.exp(rng.uniform(0.0, 0.5 * math.log(_MAX_ASPECT), radii.size))
    outlines = _outlines(rng, kinds, radii, angles, centres, stretch)
    centre = np.rint(centres).astype(np.int64).tolist()
    radius = np.rint(radii).astype(np.int64).tolist()
    axes = np.stack([np.rint(radii * stretch), np.maximum(np.rint(radii / stretch), 1)], axis=1)
    axes = axes.astype(np.int64).tolist()
    degrees = np.degrees(angles).tolist()
    disk, ellipse = SHAPES.index("disk"), SHAPES.index("ellipse")
    for index, (label, kind) in enumerate(zip(ids.tolist(), kinds.tolist(), strict=True)):
        if kind == disk:
            cv2.circle(labels, centre[index], radius[index], label, -1)
        elif kind == ellipse:
            cv2.ellipse(labels, centre[index], axes[index], degrees[index], 0, 360, label, -1)
        else:
            cv2.fillPoly(labels, [outlines[index]], label)


def _check(rmin, rmax, alpha, coverage, texture_ratio, shapes, supersample, palette):
    if not rmin > 0:
        raise ValueError(f"rmin must be positive. Received: rmin={rmin}")
    if rmax is not None and not rmax >= rmin:
        raise ValueError(f"rmax must be >= rmin ({rmin}). Received: rmax={rmax}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive. Received: alpha={alpha}")
    if not coverage > 0:
        raise ValueError(f"coverage must be positive. Received: coverage={coverage}")
    if not 0.0 <= texture_ratio <= 1.0:
        raise ValueError(
            f"texture_ratio must be in [0, 1]. Received: texture_ratio={texture_ratio}"
        )
    unknown = [shape for shape in shapes if shape not in SHAPES]
    if not shapes or unknown:
        raise ValueError(f"shapes must be some of {list(SHAPES)}. Received: shapes={shapes}")
    if int(supersample) != supersample or supersample < 1:
        raise ValueError(f"supersample must be an int >= 1. Received: supersample={supersample}")
    if palette is not None:
        palette = np.asarray(palette)
        if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] == 0:
            raise ValueError(f"palette must be (N, 3) colours. Received shape {palette.shape}")
        if palette.dtype != np.uint8:
            raise ValueError(f"palette must be uint8. Received dtype {palette.dtype}")
    return palette


def dead_leaves_labels(rng, size, rmin=1.0, rmax=None, alpha=3.0, coverage=4.0, shapes=SHAPES):
    """The occlusion layout of a dead-leaves image: which leaf is on top at each pixel.

    Args:
        rng: `numpy.random.Generator`.
        size: `(height, width)` in pixels.
        rmin, rmax, alpha, coverage, shapes: see `dead_leaves_image`.

    Returns:
        `(labels, radii, centres, angles)`: int32 `(height, width)` leaf
        numbers, 0 for the background (seen only where no leaf fell) and `k`
        for the `k`-th leaf painted (higher is nearer); then, for leaf `k` at
        index `k - 1`: its radius (of a disk of the same area), its centre
        `(x, y)` and its orientation in radians.
    """
    _check(rmin, rmax, alpha, coverage, 0.0, shapes, 1, None)
    height, width = int(size[0]), int(size[1])
    rmax = float(max(height, width)) if rmax is None else float(rmax)
    border = _BORDER * max(height, width)
    domain = (width + 2 * border) * (height + 2 * border)
    # Draw radii until the leaves' total area covers the domain `coverage` times.
    radii, total = [], 0.0
    while total < coverage * domain:
        batch = sample_radii(rng, 4096, rmin, rmax, alpha)
        area = np.cumsum(np.pi * batch**2) + total
        keep = np.searchsorted(area, coverage * domain) + 1
        radii.append(batch[:keep])
        total = float(area[min(keep, area.size) - 1])
    radii = np.concatenate(radii)
    count = radii.size
    centres = np.stack(
        [rng.uniform(-border, width + border, count), rng.uniform(-border, height + border, count)],
        axis=1,
    )
    angles = rng.uniform(0.0, np.pi, count)
    labels = np.zeros((height, width), np.int32)
    # Painter's order: leaf k (label k + 1) hides every leaf before it. OpenCV draws
    # the large leaves in that order, then the small ones are stamped keeping the
    # highest label, so each pixel ends with the highest label among its leaves.
    stamped = radii < _STAMP_RADIUS * max(rmin, 1.0)
    large, small = np.flatnonzero(~stamped), np.flatnonzero(stamped)
    _draw_large(rng, labels, centres[large], radii[large], angles[large], shapes, large + 1)
    _stamp_small(labels, centres[small], radii[small], (small + 1).astype(np.int32))
    return labels, radii, centres, angles


def dead_leaves_image(
    rng,
    size=(256, 256),
    rmin=1.0,
    rmax=None,
    alpha=3.0,
    coverage=4.0,
    shapes=SHAPES,
    texture_ratio=0.5,
    palette=None,
    supersample=2,
):
    """A sharp procedural image of occluding leaves at every scale.

    Args:
        rng: `numpy.random.Generator`.
        size: `(height, width)` in pixels. Defaults to `(256, 256)`.
        rmin: float. Smallest leaf radius in pixels (the radius of a disk
            of the leaf's area). Defaults to 1.
        rmax: float or None. Largest leaf radius; None is the canvas's
            longer side. Defaults to None.
        alpha: float. Radii have density `r^-alpha`; 3 makes the image
            scale-invariant like natural images. Defaults to 3.
        coverage: float. Leaves are painted until their total area is this
            many times the canvas (plus a border), so about `exp(-coverage)`
            of it shows the background leaf. Defaults to 4.
        shapes: sequence of names from `SHAPES` (`"disk"`, `"ellipse"`,
            `"rectangle"`, `"polygon"`), one drawn uniformly per leaf of
            radius 4 `rmin` or more (smaller ones are disks). Defaults to all.
        texture_ratio: float in [0, 1]. Share of textured leaves (ramp,
            grating, fine noise or smooth noise, between two colours); the
            others are flat. Defaults to 0.5.
        palette: uint8 array `(n, 3)` of RGB colours, or None. Leaf colours
            are drawn from its rows (see `photo_palette`); None draws HSV
            colours favouring muted ones. Defaults to None.
        supersample: int >= 1. Render at this many times the size and
            average down (area interpolation), which anti-aliases edges as
            a sensor's pixels do; 1 gives staircase edges. Defaults to 2.

    Returns:
        uint8 `np.ndarray` `(height, width, 3)`, RGB.

    Example:

    >>> image = dead_leaves_image(np.random.default_rng(0), size=(64, 96))
    >>> image.shape, image.dtype
    ((64, 96, 3), dtype('uint8'))
    """
    palette = _check(rmin, rmax, alpha, coverage, texture_ratio, shapes, supersample, palette)
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive. Received: size={tuple(size)}")
    factor = int(supersample)
    rmax = float(max(height, width)) if rmax is None else float(rmax)
    labels, radii, centres, _ = dead_leaves_labels(
        rng,
        (height * factor, width * factor),
        rmin * factor,
        rmax * factor,
        alpha,
        coverage,
        shapes,
    )
    # The background, label 0, is one more leaf: as large as the canvas.
    radii = np.concatenate([[float(max(labels.shape))], radii])
    centres = np.concatenate([[[labels.shape[1] / 2, labels.shape[0] / 2]], centres])
    # Most leaves end up hidden: only the visible ones get an appearance.
    seen = np.flatnonzero(np.bincount(labels.ravel(), minlength=radii.size))
    rows = np.zeros(radii.size, np.int32)
    rows[seen] = np.arange(seen.size, dtype=np.int32)
    table = _leaf_table(rng, radii[seen], centres[seen], texture_ratio, palette, factor)
    image = _render(rng, rows.take(labels), table, factor)
    if factor > 1:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _render(rng, labels, table, factor):
    """Colours every pixel from its leaf's row of the parameter table (`labels` index rows).

    A flat leaf's weight is 0.5 everywhere (no ramp, grating or noise term), so
    its colour is looked up per leaf; the per-pixel formula runs on the textured
    leaves' pixels only, with the same result.
    """
    height, width = labels.shape
    columns = np.ascontiguousarray(table.T)
    # The coordinate along the leaf's direction, from its centre.
    columns[_CX] = columns[_CX] * columns[_UX] + columns[_CY] * columns[_UY]
    columns[_C1 : _C1 + 3] -= columns[_C0:_C1]
    # Both fields are drawn whenever a leaf uses them, fine first, for the same random stream.
    fine = _noise_field(rng, height, width, factor) if np.any(columns[_FINE]) else None
    smooth = _noise_field(rng, height, width, 16 * factor) if np.any(columns[_SMOOTH]) else None
    flat_colours = columns[_C0:_C1] + np.float32(0.5) * columns[_C1 : _C1 + 3]
    image = flat_colours.T.take(labels, axis=0)
    textured = np.any(columns[[_SLOPE, _GRATING, _FINE, _SMOOTH]] != 0, axis=0)
    pixels = np.flatnonzero(textured.take(labels))
    leaves = labels.reshape(-1).take(pixels)
    rows, cols = np.divmod(pixels, width)

    def gather(column):
        return columns[column].take(leaves)

    along = cols.astype(np.float32) * gather(_UX)
    along += rows.astype(np.float32) * gather(_UY)
    along -= gather(_CX)
    weight = 0.5 + gather(_SLOPE) * along
    wave = np.sin(gather(_FREQUENCY) * along + gather(_PHASE)) * gather(_SHARPNESS)
    weight += gather(_GRATING) * np.clip(wave, -1.0, 1.0)
    if fine is not None:
        weight += gather(_FINE) * fine.reshape(-1).take(pixels)
    if smooth is not None:
        weight += gather(_SMOOTH) * smooth.reshape(-1).take(pixels)
    weight = np.clip(weight, 0.0, 1.0)
    colours = image.reshape(-1, 3)
    for channel in range(3):
        colours[pixels, channel] = gather(_C0 + channel) + weight * gather(_C1 + channel)
    return image


def photo_palette(paths, count=4096, seed=0):
    """Leaf colours with natural statistics: random pixels of photos.

    Args:
        paths: list of str. Photos; unreadable ones are skipped with a
            one-line warning each.
        count: int. Number of colours. Defaults to 4096.
        seed: int. Picks the pixels. Defaults to 0.

    Returns:
        uint8 `np.ndarray` `(count, 3)`, RGB: the `palette` of `dead_leaves_image`.

    Raises:
        ValueError: no readable photo.
    """
    rng = np.random.default_rng(seed)
    paths = list(paths)
    per_photo = -(-count // max(len(paths), 1))
    colours = []
    for path in paths:
        try:
            pixels = to_rgb_uint8(read_image(path)).reshape(-1, 3)
        except ImageReadError as error:
            logger.warning("Skipping %s", error)
            continue
        colours.append(pixels[rng.integers(len(pixels), size=per_photo)])
    if not colours:
        raise ValueError(f"photo_palette: none of the {len(paths)} photos could be read")
    colours = np.concatenate(colours)
    return colours[rng.permutation(len(colours))[:count]]
