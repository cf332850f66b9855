"""Augmentations and JPEG: ranges, pairing, colour order."""

import cv2
import numpy as np
import pytest

from keras_deblur.data.augment import (
    colour_table,
    draw_rescale,
    jitter_colours,
    jpeg_compress,
    random_dihedral,
    random_rescale,
    rescale_region,
)
from keras_deblur.data.embedded import embedded_photo_paths
from keras_deblur.data.images import read_image


def test_rescaling_stays_in_range_and_above_the_minimum_side():
    image = np.zeros((200, 300, 3), np.uint8)
    rng = np.random.default_rng(0)
    shapes = [random_rescale(image, rng).shape for _ in range(50)]
    assert all(100 <= h <= 200 and 150 <= w <= 300 for h, w, _ in shapes)
    assert len(set(shapes)) > 10
    assert all(random_rescale(image, rng, min_side=180).shape[0] >= 180 for _ in range(20))
    small = np.zeros((50, 60, 3), np.uint8)
    assert random_rescale(small, rng, min_side=128) is small  # never upscales


def test_draw_rescale_is_the_size_random_rescale_gives():
    image = np.zeros((200, 300, 3), np.uint8)
    for seed in range(20):
        size = draw_rescale(np.random.default_rng(seed), image.shape, min_side=128)
        assert random_rescale(image, np.random.default_rng(seed), min_side=128).shape[:2] == size


def test_rescale_region_is_the_whole_resize_where_the_grids_meet():
    photo = read_image(embedded_photo_paths("train")[0])[:, :, :3]
    size = (photo.shape[0] // 2, photo.shape[1] // 2)
    whole = cv2.resize(photo, size[::-1], interpolation=cv2.INTER_AREA)
    for region in [(0, 0, 50, 60), (10, 24, 64, 64), (size[0] - 40, size[1] - 30, 40, 30)]:
        top, left, height, width = region
        expected = whole[top : top + height, left : left + width]
        np.testing.assert_array_equal(rescale_region(photo, size, region), expected)


def test_rescale_region_is_within_a_sub_pixel_shift_of_the_whole_resize():
    photo = read_image(embedded_photo_paths("train")[1])[:, :, :3]
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(60):
        size = draw_rescale(rng, photo.shape, scale_range=(0.5, 0.99), min_side=150)
        whole = cv2.resize(photo, size[::-1], interpolation=cv2.INTER_AREA).astype(float)
        height, width = int(rng.integers(1, 140)), int(rng.integers(1, 140))
        top, left = int(rng.integers(1, size[0] - height)), int(rng.integers(1, size[1] - width))
        part = rescale_region(photo, size, (top, left, height, width))
        assert part.shape == (height, width, 3)
        crop = whole[top : top + height, left : left + width]
        one_pixel = np.mean(
            [
                np.abs(whole[top + dy : top + dy + height, left + dx : left + dx + width] - crop)
                for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))
            ]
        )
        ratios.append(np.abs(part - crop).mean() / max(one_pixel, 1e-9))
    # Closer to the whole resize than a one-pixel shift of it, every time (the
    # grid moves by half a pixel at most on each axis): 0.5 on average here.
    assert max(ratios) < 1.0 and np.mean(ratios) < 0.6


def test_jitter_colours_applies_a_table_drawn_earlier_as_its_own_draw():
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    drawn = jitter_colours(image, np.random.default_rng(5))
    later = jitter_colours(image, None, table=colour_table(np.random.default_rng(5)))
    np.testing.assert_array_equal(drawn, later)


def test_colour_jitter_is_mild_and_varied():
    image = np.random.default_rng(1).integers(20, 230, (32, 32, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    jittered = [jitter_colours(image, rng) for _ in range(30)]
    assert all(j.dtype == np.uint8 and j.shape == image.shape for j in jittered)
    shifts = [np.abs(j.astype(float) - image).mean() for j in jittered]
    assert max(shifts) < 60 and np.mean(shifts) > 3


def test_dihedral_applies_one_transform_to_every_image_and_reaches_all_eight():
    image = np.arange(12).reshape(3, 4)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        first, second = random_dihedral(rng, image, image + 100)
        np.testing.assert_array_equal(second, first + 100)
        seen.add(first.tobytes() + bytes(first.shape))
    assert len(seen) == 8


@pytest.mark.parametrize("colour", [(255, 0, 0), (0, 0, 255), (20, 200, 60)])
def test_jpeg_keeps_colours_in_rgb_order(colour):
    image = np.full((32, 32, 3), colour, np.uint8)
    compressed = jpeg_compress(image, 90)
    assert compressed.shape == image.shape and compressed.dtype == np.uint8
    assert np.abs(compressed.astype(int) - colour).max() <= 8
