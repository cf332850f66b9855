"""Dead-leaves images: seeded, sized, scale-invariant, many occluding leaves, fast enough."""

import time

import cv2
import numpy as np
import pytest

from keras_deblur.data.dead_leaves import (
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
