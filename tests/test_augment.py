"""Augmentations and JPEG: ranges, pairing, colour order."""

import numpy as np
import pytest

from keras_deblur.data.augment import (
    jitter_colours,
    jpeg_compress,
    random_dihedral,
    random_rescale,
)


def test_rescaling_stays_in_range_and_above_the_minimum_side():
    image = np.zeros((200, 300, 3), np.uint8)
    rng = np.random.default_rng(0)
    shapes = [random_rescale(image, rng).shape for _ in range(50)]
    assert all(100 <= h <= 200 and 150 <= w <= 300 for h, w, _ in shapes)
    assert len(set(shapes)) > 10
    assert all(random_rescale(image, rng, min_side=180).shape[0] >= 180 for _ in range(20))
    small = np.zeros((50, 60, 3), np.uint8)
    assert random_rescale(small, rng, min_side=128) is small  # never upscales


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
