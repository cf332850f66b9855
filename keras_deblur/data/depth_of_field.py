"""Synthetic shallow depth of field: sharp targets whose softness is optical, not a shake.

A deblurring model must leave a photo's out-of-focus background as it is (a
macro shot, a portrait-mode phone photo). Trained only on photos that are sharp
everywhere, a model takes bokeh for camera shake and "removes" it, drawing
halos. These functions make training targets that keep their defocus: a scene
of layers at random depths, each layer blurred by a disk whose radius grows
with its distance from the focal plane (in disparity, as a thin lens's circle
of confusion does), composited back to front with premultiplied alpha in
linear light (so highlights spread as real bokeh does). The layered model is
the usual approximation of defocus: occlusion edges are only roughly right,
which is fine for teaching what not to touch.

Two scene kinds:
- `photo_depth_of_field`: a sharp photo, its pixels put at depths from a random
  depth map (a receding plane, as a close-up over grass, or a subject shape in
  front of a far background);
- `layered_dead_leaves`: dead-leaves images stacked as layers with leaf-shaped
  coverage, one of them in focus.

Everything is seeded through a `numpy.random.Generator`; images are uint8 RGB.
"""

import math

import cv2
import numpy as np

from keras_deblur.data.dead_leaves import dead_leaves_image, dead_leaves_labels

# Disk radii (pixels) of the most defocused layer, drawn uniformly per image:
# at the 1024-pixel photos we train on, a phone's portrait mode or a macro lens
# blurs the background by a few to a few tens of pixels.
MAX_RADIUS_RANGE = (2.0, 16.0)
# Depth bands a continuous depth map is cut into: the disk radius then steps by
# at most MAX_RADIUS_RANGE[1] / NUM_BANDS between neighbouring bands.
NUM_BANDS = 8
DEPTH_MAPS = ("plane", "subject")
# Disk radii (pixels) of `soft_all_over`: focus missed by a little, a soft lens, a
# phone's noise reduction; beyond 2 pixels a photo is plainly out of focus.
SOFT_RADIUS_RANGE = (0.5, 2.0)
# Disk radius (pixels) of the nearest pixel of `misfocused_depth_of_field`.
MISFOCUS_RADIUS_RANGE = (0.5, 2.0)
_GAMMA = 2.2
_SUPERSAMPLE = 4


def disk_kernel(radius):
    """A disk point-spread function of `radius` pixels, anti-aliased, summing to 1.

    Args:
        radius: float >= 0. Below 0.5 the kernel is the identity (1x1).

    Returns:
        float32 array `(2 r + 1, 2 r + 1)` with `r = ceil(radius)`.
    """
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = math.ceil(radius)
    # Coverage of each pixel by the disk, from a grid of sub-pixel samples.
    steps = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - 0.5
    axis = (np.arange(-half, half + 1)[:, None] + steps[None, :]).ravel()
    inside = (axis[:, None] ** 2 + axis[None, :] ** 2) <= radius**2
    size = 2 * half + 1
    kernel = inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    return (kernel / kernel.sum()).astype(np.float32)


def margin_for(max_radius):
    """Pixels of context a window needs around it to be defocused as the whole image would."""
    return math.ceil(max_radius)


def composite_layers(layers):
    """Defocuses and composites layers back to front.

    Args:
        layers: list of `(image, coverage, radius)`, farthest first: uint8 RGB
            `(H, W, 3)`, float coverage `(H, W)` in [0, 1] (the first layer is
            usually fully covered) and the layer's disk radius in pixels.

    Returns:
        uint8 RGB `(H, W, 3)`.
    """
    result = previous = None
    for image, coverage, radius in layers:
        if image is not previous:  # `render_depth_of_field` gives one photo to every band
            linear, previous = (image.astype(np.float32) / 255.0) ** _GAMMA, image
        coverage = coverage.astype(np.float32)
        kernel = disk_kernel(radius)
        colour = cv2.filter2D(
            linear * coverage[..., None], -1, kernel, borderType=cv2.BORDER_REFLECT
        )
        alpha = cv2.filter2D(coverage, -1, kernel, borderType=cv2.BORDER_REFLECT)
        result = colour if result is None else colour + (1.0 - alpha[..., None]) * result
    encoded = np.clip(result, 0.0, 1.0) ** (1.0 / _GAMMA)
    return np.round(encoded * 255.0).astype(np.uint8)


def render_depth_of_field(image, disparity, focus, max_radius, num_bands=NUM_BANDS):
    """Defocuses a photo by a per-pixel disparity map, as a thin lens focused at `focus`.

    The disk radius of a pixel is `max_radius * |disparity - focus|`. Disparity
    is cut into bands `1 / num_bands` wide centred on the focus, each a layer
    blurred by the radius at its centre and composited from far (0) to near
    (1). The focal band is rendered sharp, as a lens renders its focal plane:
    bands on a fixed grid left it up to `max_radius / (2 num_bands)` soft, a
    pixel's blur that looks like a short shake. A band's layer covers its own
    pixels and every nearer one (anti-aliased over one band's width), so a far
    layer has no hole where a near one stands: its blur spreads the near
    pixels' colours a little instead of leaving dark rings.

    Args:
        image: uint8 RGB `(H, W, 3)`, sharp everywhere.
        disparity: float array `(H, W)` in [0, 1]; 1 is nearest.
        focus: float in [0, 1]. Disparity of the focal plane.
        max_radius: float >= 0. Radius of a pixel one unit of disparity from focus.
        num_bands: int >= 1. Bands per unit of disparity. Defaults to `NUM_BANDS`.

    Returns:
        uint8 RGB `(H, W, 3)`; the image itself where `max_radius` is 0.
    """
    # Position in bands from the focal plane: band k is centred at k, the focus at 0.
    position = (np.clip(np.asarray(disparity, np.float32), 0.0, 1.0) - focus) * num_bands
    farthest, nearest = round(float(position.min())), round(float(position.max()))
    layers = []
    for band in range(farthest, nearest + 1):
        if band == farthest:
            coverage = np.ones_like(position)
        else:
            coverage = np.clip(position - band + 1.0, 0.0, 1.0)
        if coverage.any():
            layers.append((image, coverage, max_radius * abs(band) / num_bands))
    return composite_layers(layers)


def soft_all_over(rng, image, radius=None):
    """A photo a little soft everywhere: one disk blur over the whole frame, in linear light.

    Many photos are slightly soft with no shake at all. A model trained only on
    photos sharp somewhere takes a pixel or two of such softness for a short
    shake and sharpens it; as a target it teaches that this softness is content.

    Args:
        rng: `numpy.random.Generator`.
        image: uint8 RGB `(H, W, 3)`.
        radius: float or None. Disk radius in pixels; None draws it from
            `SOFT_RADIUS_RANGE`. Defaults to None.

    Returns:
        uint8 RGB `(H, W, 3)`; borders reflect.
    """
    radius = rng.uniform(*SOFT_RADIUS_RANGE) if radius is None else radius
    return composite_layers([(image, np.ones(image.shape[:2], np.float32), radius)])


def misfocused_depth_of_field(rng, image, max_radius=None, kind=None):
    """A photo focused a little in front of its nearest point: soft everywhere, more with depth.

    A missed autofocus, or a subject too close for the lens. Unlike
    `soft_all_over` the softness varies across the frame, from
    `MISFOCUS_RADIUS_RANGE` at the nearest pixel to several times that far
    away, as real misfocused photos (and the defocused targets of stage 17,
    which taught the model to leave them alone) are.

    Args:
        rng: `numpy.random.Generator`.
        image: uint8 RGB `(H, W, 3)`.
        max_radius: float or None. Disk radius of the farthest pixel; None draws
            it from `MAX_RADIUS_RANGE`. Defaults to None.
        kind: see `random_depth_map`.

    Returns:
        uint8 RGB `(H, W, 3)`: no pixel sharper than the nearest one's disk.
    """
    farthest = rng.uniform(*MAX_RADIUS_RANGE) if max_radius is None else max_radius
    disparity = random_depth_map(rng, image.shape[:2], kind)
    nearest = min(rng.uniform(*MISFOCUS_RADIUS_RANGE), farthest)
    depth_range = max(float(disparity.max() - disparity.min()), 1e-3)
    per_unit = (farthest - nearest) / depth_range  # disk radius per unit of disparity
    if per_unit < 1e-3:  # a flat scene, or `max_radius` below the nearest disk
        return soft_all_over(rng, image, nearest)
    focus = float(disparity.max()) + nearest / per_unit
    # Bands half a pixel of radius apart: with no focal band in the frame, a coarse
    # band would leave the nearest pixels blurred by the next band's radius.
    num_bands = max(NUM_BANDS, math.ceil(2.0 * per_unit))
    return render_depth_of_field(image, disparity, focus, per_unit, num_bands=num_bands)


def smooth_field(rng, shape, scale):
    """A smooth random field in [0, 1] varying over about `scale` pixels."""
    height, width = shape
    small = (max(2, round(height / scale) + 2), max(2, round(width / scale) + 2))
    coarse = rng.random(small).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    low, high = float(field.min()), float(field.max())
    return (field - low) / max(high - low, 1e-6)


def random_depth_map(rng, shape, kind=None):
    """A random disparity map in [0, 1] (1 nearest).

    Args:
        rng: `numpy.random.Generator`.
        shape: `(height, width)`.
        kind: "plane" (a receding ground or wall: disparity ramps across the
            frame at a random angle, with gentle unevenness), "subject" (shapes
            near the camera in front of a receding background) or None (either,
            at random). Defaults to None.

    Returns:
        float32 `(height, width)`.
    """
    kind = DEPTH_MAPS[rng.integers(len(DEPTH_MAPS))] if kind is None else kind
    if kind not in DEPTH_MAPS:
        raise ValueError(f"kind must be one of {DEPTH_MAPS} or None. Received: kind={kind!r}")
    height, width = shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * cols + np.sin(angle) * rows) / max(height, width)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    plane = 0.85 * ramp + 0.15 * smooth_field(rng, shape, max(height, width) / 3)
    if kind == "plane":
        return plane
    side = max(height, width)
    labels, *_ = dead_leaves_labels(
        rng, (height, width), rmin=side / 10, rmax=side / 3, coverage=rng.uniform(0.2, 0.8)
    )
    background = 0.5 * plane
    return np.where(labels > 0, np.float32(rng.uniform(0.8, 1.0)), background).astype(np.float32)


def photo_depth_of_field(rng, image, max_radius=None, kind=None):
    """A sharp photo given shallow depth of field at a random focus and depth map.

    Args:
        rng: `numpy.random.Generator`.
        image: uint8 RGB `(H, W, 3)`.
        max_radius: float or None. See `render_depth_of_field`; None draws it
            from `MAX_RADIUS_RANGE`. Defaults to None.
        kind: see `random_depth_map`.

    Returns:
        uint8 RGB `(H, W, 3)`: in focus near the focal plane, soft elsewhere.
    """
    max_radius = rng.uniform(*MAX_RADIUS_RANGE) if max_radius is None else max_radius
    disparity = random_depth_map(rng, image.shape[:2], kind)
    return render_depth_of_field(image, disparity, random_focus(rng, disparity), max_radius)


def random_focus(rng, disparity):
    """A focal plane on something in the frame, as a photographer focuses, mostly near.

    A focus between depths that no pixel has leaves the whole photo soft: a
    misfocused photo rather than shallow depth of field, and to a deblurrer no
    different from a short shake.

    Args:
        rng: `numpy.random.Generator`.
        disparity: float array `(H, W)` in [0, 1]; 1 is nearest.

    Returns:
        float: the disparity at a random level between the map's median and its
        maximum (the subject, where one covers at least half of the frame).
    """
    return float(np.quantile(disparity, rng.uniform(0.5, 1.0)))


def layered_dead_leaves(rng, size, max_radius=None, num_layers=(2, 4), leaf_options=None):
    """A dead-leaves scene of layers at random depths with one layer in focus.

    The farthest layer covers the frame; each nearer one covers it with
    leaf-shaped patches (a sparse dead-leaves layout) of another dead-leaves
    image. A random layer is in focus; the others are blurred by a disk of
    `max_radius` times their depth distance from it.

    Args:
        rng: `numpy.random.Generator`.
        size: `(height, width)`.
        max_radius: float or None. None draws from `MAX_RADIUS_RANGE`.
        num_layers: `(low, high)` bounds (inclusive) of the number of layers.
        leaf_options: dict or None. Keyword arguments of `dead_leaves_image`.

    Returns:
        uint8 RGB `(height, width, 3)`.
    """
    leaf_options = dict(leaf_options or {})
    max_radius = rng.uniform(*MAX_RADIUS_RANGE) if max_radius is None else max_radius
    count = int(rng.integers(num_layers[0], num_layers[1] + 1))
    depths = np.sort(rng.uniform(0.0, 1.0, count))
    depths[0] = 0.0  # the backdrop is the farthest
    focus = depths[rng.integers(count)]
    height, width = int(size[0]), int(size[1])
    layers = []
    for index, depth in enumerate(depths):
        image = dead_leaves_image(rng, (height, width), **leaf_options)
        coverage = np.ones((height, width), np.float32) if index == 0 else _leaf_coverage(rng, size)
        layers.append((image, coverage, max_radius * abs(depth - focus)))
    return composite_layers(layers)


def _leaf_coverage(rng, size):
    """Anti-aliased coverage of a sparse layer of large leaves."""
    height, width = int(size[0]), int(size[1])
    big = (height * 2, width * 2)
    side = max(big)
    labels, *_ = dead_leaves_labels(
        rng, big, rmin=side / 16, rmax=side / 3, coverage=rng.uniform(0.1, 0.6)
    )
    mask = (labels > 0).astype(np.float32)
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)
