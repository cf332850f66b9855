"""Dead-leaves images: seeded, sized, scale-invariant, many occluding leaves, fast enough."""

import time

import cv2
import numpy as np
import pytest

from keras_deblur.data.dead_leaves import (
    _C0,
    _C1,
    _CX,
    _CY,
    _FINE,
    _FREQUENCY,
    _GRATING,
    _PHASE,
    _SHARPNESS,
    _SLOPE,
    _SMOOTH,
    _STAMP_STEP,
    _UX,
    _UY,
    _leaf_table,
    _noise_field,
    _render,
    _stamp_small,
    dead_leaves_image,
    dead_leaves_labels,
    photo_palette,
    sample_radii,
)
from keras_deblur.data.embedded import embedded_photo_paths


def test_the_same_seed_gives_the_same_image_and_another_seed_another():
    first = dead_leaves_image(np.random.default_rng(7), (64, 80))
    np.testing.assert_array_equal(first, dead_leaves_image(np.random.default_rng(7), (64, 80)))
    assert not np.array_equal(first, dead_leaves_image(np.random.default_rng(8), (64, 80)))


@pytest.mark.parametrize("supersample", [1, 2, 3])
@pytest.mark.parametrize("size", [(1, 1), (17, 5), (96, 128)])
def test_images_are_uint8_rgb_of_the_requested_size(size, supersample):
    image = dead_leaves_image(np.random.default_rng(0), size, supersample=supersample)
    assert image.shape == (*size, 3) and image.dtype == np.uint8


def test_radii_follow_the_power_law():
    radii = sample_radii(np.random.default_rng(0), 200_000, rmin=1.0, rmax=100.0, alpha=3.0)
    assert radii.min() >= 1.0 and radii.max() <= 100.0
    # Density r^-3: the share above r is (r^-2 - 100^-2) / (1 - 100^-2), about r^-2.
    for r in (2.0, 4.0, 10.0):
        share = np.mean(radii > r)
        expected = (r**-2 - 1e-4) / (1 - 1e-4)
        assert abs(share - expected) < 0.05 * expected + 1e-3


def test_visible_leaves_are_many_and_mostly_small_at_every_scale():
    counts = np.zeros(5)
    for seed in range(4):
        labels, radii, _, _ = dead_leaves_labels(np.random.default_rng(seed), (256, 256))
        visible = np.unique(labels)
        visible = visible[visible > 0]
        assert visible.size > 300  # many leaves, not a few blobs
        # Almost every pixel is covered by a leaf, not the background.
        assert np.mean(labels == 0) < 0.05
        seen = radii[visible - 1]
        counts += [np.sum((seen >= r) & (seen < 2 * r)) for r in (1, 2, 4, 8, 16)]
    # Visible leaves per octave of radius fall steeply with the radius (about 3x an
    # octave for r^-3 sizes under occlusion), and large leaves are there too.
    assert all(a > 2 * b for a, b in zip(counts, counts[1:-1], strict=False)), counts
    assert counts[-1] >= 5, counts


def test_flat_leaves_have_a_natural_power_spectrum():
    """Scale invariance: the radial power spectrum falls about as 1/f^2, as in photos."""
    images = [
        dead_leaves_image(np.random.default_rng(seed), (256, 256), texture_ratio=0.0).mean(axis=2)
        for seed in range(4)
    ]
    power = np.mean([np.abs(np.fft.fft2(image - image.mean())) ** 2 for image in images], axis=0)
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij"))
    bands = np.geomspace(0.01, 0.3, 8)
    means = [
        power[(frequency >= a) & (frequency < b)].mean()
        for a, b in zip(bands[:-1], bands[1:], strict=True)
    ]
    slope = np.polyfit(np.log(np.sqrt(bands[:-1] * bands[1:])), np.log(means), 1)[0]
    assert -3.0 < slope < -1.5, slope


def _edge_sharpness(image):
    """Median share of an edge's contrast crossed in its steepest one-pixel step."""
    gray = image.astype(np.float64).mean(axis=2)
    steps = np.abs(np.diff(gray, axis=1))
    windows = np.lib.stride_tricks.sliding_window_view(steps, 6, axis=1)
    change = np.abs(gray[:, 6:] - gray[:, :-6])
    edges = change > 40
    return float(np.median(windows.max(axis=2)[edges] / change[edges]))


def test_edges_are_sharp_one_pixel_steps():
    image = dead_leaves_image(np.random.default_rng(3), (128, 128), texture_ratio=0.0)
    assert _edge_sharpness(image) > 0.6
    # The measure tells: a slightly defocused copy fails it.
    assert _edge_sharpness(cv2.GaussianBlur(image, (0, 0), 1.5)) < 0.4


def test_the_palette_gives_the_colours():
    palette = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    image = dead_leaves_image(
        np.random.default_rng(0), (64, 64), texture_ratio=0.0, palette=palette, supersample=1
    )
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert colours <= {(255, 0, 0), (0, 0, 255)}
    photo = photo_palette(embedded_photo_paths("train"), count=100, seed=0)
    assert photo.shape == (100, 3) and photo.dtype == np.uint8


@pytest.mark.parametrize(
    "options, name",
    [
        ({"rmin": 0}, "rmin"),
        ({"rmin": 5, "rmax": 2}, "rmax"),
        ({"alpha": -1}, "alpha"),
        ({"coverage": 0}, "coverage"),
        ({"texture_ratio": 1.5}, "texture_ratio"),
        ({"shapes": ("disk", "star")}, "shapes"),
        ({"supersample": 0}, "supersample"),
        ({"palette": np.zeros((4, 4), np.uint8)}, "palette"),
        ({"size": (0, 4)}, "size"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_option(options, name):
    options = {"size": (8, 8), **options}
    with pytest.raises(ValueError, match=name) as error:
        dead_leaves_image(np.random.default_rng(0), **options)
    assert "\n" not in str(error.value)


def test_a_training_canvas_takes_milliseconds():
    rng = np.random.default_rng(0)
    dead_leaves_image(rng, (192, 192))
    start = time.process_time()
    for _ in range(5):
        dead_leaves_image(rng, (192, 192))
    # About 10-30 ms each on one loaded core; a slow path (a Python loop per leaf) is 10x that.
    assert (time.process_time() - start) / 5 < 0.25


def _stamp_one_by_one(labels, centres, radii, ids):
    """Slow reference of `_stamp_small`: each leaf's disk in turn, keeping the highest label."""
    height, width = labels.shape
    rows, cols = np.mgrid[0:height, 0:width]
    for (x, y), radius, leaf in zip(centres, radii, ids, strict=True):
        radius = max(round(radius / _STAMP_STEP), 1) * _STAMP_STEP
        inside = (cols - round(x)) ** 2 + (rows - round(y)) ** 2 <= radius**2 + 1e-9
        labels[inside] = np.maximum(labels[inside], leaf)


@pytest.mark.parametrize("seed", range(4))
def test_stamped_disks_match_painting_them_one_by_one(seed):
    rng = np.random.default_rng(seed)
    height, width = 37, 52
    count = 300
    # Centres up to 12 pixels outside the canvas: some disks are clipped, some miss it.
    centres = np.stack(
        [rng.uniform(-12, width + 12, count), rng.uniform(-12, height + 12, count)], 1
    )
    radii = rng.uniform(0.2, 8.0, count)
    ids = np.arange(5, 5 + count, dtype=np.int32)
    start = rng.integers(0, 400, (height, width)).astype(np.int32)  # leaves drawn before
    stamped, expected = start.copy(), start.copy()
    _stamp_small(stamped, centres, radii, ids)
    _stamp_one_by_one(expected, centres, radii, ids)
    np.testing.assert_array_equal(stamped, expected)


def _noise_field_whole(rng, height, width, finest):
    """Reference of `_noise_field`: the whole coarse field upscaled, then cropped."""
    level = max(int(np.ceil(np.log2(max(height, width)))) - 2, 1)
    field = rng.standard_normal((height // 2**level + 2, width // 2**level + 2)).astype(np.float32)
    while level > 0 and 2 ** (level - 1) >= finest:
        field = 2.0 * cv2.pyrUp(field)
        field += rng.standard_normal(field.shape, dtype=np.float32)
        level -= 1
    if level:
        size = (field.shape[1] << level, field.shape[0] << level)
        field = cv2.resize(field, size, interpolation=cv2.INTER_CUBIC)
    field = field[:height, :width]
    return (field - field.mean()) / max(float(field.std()), 1e-6)


@pytest.mark.parametrize("size", [(296, 296), (150, 97), (33, 260), (5, 7)])
@pytest.mark.parametrize("finest", [1, 2, 32])
def test_noise_field_upscales_only_what_the_canvas_needs_with_the_same_result(size, finest):
    field = _noise_field(np.random.default_rng(3), *size, finest)
    expected = _noise_field_whole(np.random.default_rng(3), *size, finest)
    assert field.shape == size
    np.testing.assert_allclose(field, expected, rtol=0, atol=1e-5)


_COLUMN_NAMES = {
    "cx": _CX,
    "cy": _CY,
    "ux": _UX,
    "uy": _UY,
    "slope": _SLOPE,
    "grating": _GRATING,
    "frequency": _FREQUENCY,
    "phase": _PHASE,
    "sharpness": _SHARPNESS,
    "fine": _FINE,
    "smooth": _SMOOTH,
}


def _render_every_pixel(rng, labels, table, factor):
    """Reference of `_render`: the per-pixel formula on every pixel, flat leaves included."""
    height, width = labels.shape
    leaf = {name: table[labels, column] for name, column in _COLUMN_NAMES.items()}
    along = np.arange(width, dtype=np.float32) * leaf["ux"]
    along += np.arange(height, dtype=np.float32)[:, None] * leaf["uy"]
    along -= leaf["cx"] * leaf["ux"] + leaf["cy"] * leaf["uy"]
    weight = 0.5 + leaf["slope"] * along
    wave = np.sin(leaf["frequency"] * along + leaf["phase"]) * leaf["sharpness"]
    weight += leaf["grating"] * np.clip(wave, -1.0, 1.0)
    if np.any(table[:, _FINE]):
        weight += leaf["fine"] * _noise_field(rng, height, width, factor)
    if np.any(table[:, _SMOOTH]):
        weight += leaf["smooth"] * _noise_field(rng, height, width, 16 * factor)
    weight = np.clip(weight, 0.0, 1.0)[..., None]
    first, second = table[labels, _C0:_C1], table[labels, _C1:]
    return first + weight * (second - first)


@pytest.mark.parametrize("texture_ratio", [0.0, 0.5, 1.0])
def test_rendering_textured_pixels_only_matches_rendering_every_pixel(texture_ratio):
    rng = np.random.default_rng(int(10 * texture_ratio))
    labels, radii, centres, _ = dead_leaves_labels(rng, (90, 120), rmin=2.0)
    visible = np.unique(labels)
    radii = np.concatenate([[120.0], radii])[visible]
    centres = np.concatenate([[[60.0, 45.0]], centres])[visible]
    table = _leaf_table(rng, radii, centres, texture_ratio, None, 2)
    rows = np.searchsorted(visible, labels).astype(np.int32)
    image = _render(np.random.default_rng(1), rows, table, 2)
    expected = _render_every_pixel(np.random.default_rng(1), rows, table, 2)
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-5)
