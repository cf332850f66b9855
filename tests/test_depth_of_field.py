"""Tests for synthetic shallow depth of field (keras_deblur.data.depth_of_field)."""

import cv2
import numpy as np
import pytest

from keras_deblur.data import depth_of_field as dof


def _texture(shape, seed=0):
    """A sharp, busy image: every pixel differs from its neighbours."""
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _detail(image):
    """Mean absolute difference between horizontal neighbours: high where sharp."""
    return np.abs(np.diff(image.astype(np.float32), axis=1)).mean()


def test_disk_kernel_is_a_normalised_round_disk():
    assert dof.disk_kernel(0.2).shape == (1, 1)
    kernel = dof.disk_kernel(5.0)
    assert kernel.shape == (11, 11) and np.isclose(kernel.sum(), 1.0)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-7)  # round: symmetric
    assert kernel[5, 5] > 0 and kernel[0, 0] == 0  # corners lie outside the disk
    # Its area is that of a disk of radius 5, to the anti-aliasing's precision.
    assert abs(1.0 / kernel.max() - np.pi * 25) < 0.05 * np.pi * 25


def test_zero_radius_leaves_the_photo_exactly_as_it_is():
    image = _texture((40, 56))
    depth = dof.random_depth_map(np.random.default_rng(1), image.shape[:2], "subject")
    out = dof.render_depth_of_field(image, depth, focus=0.7, max_radius=0.0)
    np.testing.assert_array_equal(out, image)


def test_pixels_in_focus_stay_sharp_and_far_ones_go_soft():
    image = _texture((64, 128))
    # Left half at the focal plane, right half far behind it.
    depth = np.ones((64, 128), np.float32)
    depth[:, 64:] = 0.0
    out = dof.render_depth_of_field(image, depth, focus=1.0, max_radius=8.0)
    left, right = out[:, :48], out[:, 80:]
    np.testing.assert_array_equal(left[:, :40], image[:, :40])  # far from the edge: untouched
    assert _detail(right) < 0.2 * _detail(image[:, 80:])
    # Brightness is kept (disk kernels sum to 1), in linear light.
    assert abs(right.astype(float).mean() - image[:, 80:].astype(float).mean()) < 25


def test_the_focal_plane_is_sharp_wherever_it_lies():
    image = _texture((48, 48))
    # 0.75 lies between two bands of a fixed 8-band grid, which rendered it a pixel soft.
    depth = np.full((48, 48), 0.75, np.float32)
    out = dof.render_depth_of_field(image, depth, focus=0.75, max_radius=16.0)
    np.testing.assert_array_equal(out, image)


def test_the_focus_lands_on_the_frame_mostly_on_its_nearer_half():
    # A subject covering 70% of the frame at 0.9 before a background at 0.2.
    depth = np.full((40, 50), 0.2, np.float32)
    depth[:28] = 0.9
    focuses = [dof.random_focus(np.random.default_rng(seed), depth) for seed in range(20)]
    assert focuses == [np.float32(0.9)] * 20  # exactly the subject's depth
    ramp = np.tile(np.linspace(0.0, 1.0, 50, dtype=np.float32), (40, 1))
    focuses = [dof.random_focus(np.random.default_rng(seed), ramp) for seed in range(200)]
    assert 0.5 <= min(focuses) and max(focuses) <= 1.0 and np.std(focuses) > 0.1


def test_soft_all_over_softens_every_part_alike_and_keeps_brightness():
    image = _texture((64, 64))
    soft = dof.soft_all_over(np.random.default_rng(4), image)
    again = dof.soft_all_over(np.random.default_rng(4), image)
    np.testing.assert_array_equal(soft, again)
    for rows in (slice(0, 32), slice(32, 64)):  # no part left sharp
        assert _detail(soft[rows]) < 0.8 * _detail(image[rows])
    assert abs(soft.astype(float).mean() - image.astype(float).mean()) < 25
    # A 2-pixel disk softens more than a 1-pixel one; below half a pixel the photo is as it was.
    strong = dof.soft_all_over(None, image, radius=2.0)
    assert _detail(strong) < _detail(dof.soft_all_over(None, image, radius=1.0))
    np.testing.assert_array_equal(dof.soft_all_over(None, image, radius=0.4), image)


def test_a_misfocused_photo_is_soft_everywhere_and_softest_far_away(monkeypatch):
    image = _texture((96, 96))
    rng = np.random.default_rng(6)
    outputs = [dof.misfocused_depth_of_field(rng, image, kind="plane") for _ in range(6)]
    again = dof.misfocused_depth_of_field(np.random.default_rng(6), image, kind="plane")
    np.testing.assert_array_equal(outputs[0], again)
    for out in outputs:  # no 16-pixel block keeps its detail, unlike a focused photo's focal band
        for top in range(0, 96, 16):
            for left in range(0, 96, 16):
                block = (slice(top, top + 16), slice(left, left + 16))
                assert _detail(out[block]) < 0.8 * _detail(image[block]), (top, left)
    # On a ramp of depth (far on the left) the far side is the softer.
    ramp = np.tile(np.linspace(0, 1, 96, dtype=np.float32), (96, 1))
    monkeypatch.setattr(dof, "random_depth_map", lambda rng, shape, kind=None: ramp)
    out = dof.misfocused_depth_of_field(np.random.default_rng(7), image, max_radius=8.0)
    assert _detail(out[:, :32]) < 0.7 * _detail(out[:, 64:])
    # A scene at one depth is one disk all over: both halves alike, neither sharp.
    monkeypatch.setattr(dof, "random_depth_map", lambda rng, shape, kind=None: ramp * 0 + 0.5)
    flat = dof.misfocused_depth_of_field(np.random.default_rng(8), image)
    halves = _detail(flat[:, :48]), _detail(flat[:, 48:])
    assert max(halves) < 0.8 * _detail(image) and abs(halves[0] - halves[1]) < 0.1 * halves[0]


def test_a_smooth_ramp_has_no_dark_seams_between_bands():
    grey = np.full((64, 64, 3), 128, np.uint8)
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    out = dof.render_depth_of_field(grey, ramp, focus=0.5, max_radius=12.0)
    assert np.abs(out.astype(int) - 128).max() <= 1


def test_photo_and_leaves_scenes_are_seeded_and_soften_the_image():
    image = _texture((96, 96))
    first = dof.photo_depth_of_field(np.random.default_rng(5), image, max_radius=10.0)
    again = dof.photo_depth_of_field(np.random.default_rng(5), image, max_radius=10.0)
    np.testing.assert_array_equal(first, again)
    assert first.shape == image.shape and first.dtype == np.uint8
    assert _detail(first) < _detail(image)
    leaves = dof.layered_dead_leaves(np.random.default_rng(2), (64, 80), max_radius=8.0)
    assert leaves.shape == (64, 80, 3) and leaves.dtype == np.uint8
    sharp_leaves = dof.layered_dead_leaves(np.random.default_rng(2), (64, 80), max_radius=0.0)
    assert _detail(leaves) < _detail(sharp_leaves)


def test_unknown_depth_map_kind_is_one_line():
    with pytest.raises(ValueError, match="kind must be one of"):
        dof.random_depth_map(np.random.default_rng(0), (8, 8), "tilted")


def _composite_reference(layers):
    """Each layer in linear light, premultiplied, disk-blurred and laid over the ones behind it."""
    result = np.zeros(layers[0][0].shape, np.float64)
    for image, coverage, radius in layers:
        kernel = dof.disk_kernel(radius).astype(np.float64)
        linear = (image / 255.0) ** 2.2 * coverage[..., None]
        colour = cv2.filter2D(linear, -1, kernel, borderType=cv2.BORDER_REFLECT)
        alpha = cv2.filter2D(coverage.astype(np.float64), -1, kernel, borderType=cv2.BORDER_REFLECT)
        result = colour + (1.0 - alpha[..., None]) * result
    return np.round(np.clip(result, 0.0, 1.0) ** (1 / 2.2) * 255.0)


def test_bands_sharing_one_photo_composite_as_each_band_on_its_own_would():
    image, other = _texture((48, 40), seed=1), _texture((48, 40), seed=2)
    coverage = np.random.default_rng(3).random((48, 40)).astype(np.float32)
    ones = np.ones((48, 40), np.float32)
    layers = [(image, ones, 3.0), (image, coverage, 1.5), (other, coverage, 0.0)]
    layers.append((image, coverage, 5.0))
    difference = dof.composite_layers(layers) - _composite_reference(layers)
    assert np.abs(difference).max() <= 1  # float32 against float64, then rounding
