"""Reference restorations: Wiener with the true kernel restores, unsharp masking sharpens."""

import numpy as np
import pytest
import skimage.data

from keras_deblur import baselines
from keras_deblur.data.motion_blur import random_psf, synthesize_blur
from keras_deblur.metrics import psnr


def _motion_kernel():
    """An asymmetric 15x15 motion kernel (a bent streak with a heavier start)."""
    kernel = np.zeros((15, 15))
    for t in range(12):
        kernel[5 + t // 3, 2 + t] += 1.0
    kernel[5, 2] += 3.0
    return kernel / kernel.sum()


def _convolve(sharp, kernel):
    """Blur by the documented convention: out[x] = sum_k kernel[k] * sharp[x - k + c]."""
    kh, kw = kernel.shape
    padded = np.pad(sharp.astype(np.float64), [(kh, kh), (kw, kw), (0, 0)], mode="symmetric")
    out = np.zeros_like(padded)
    for i, j in zip(*np.nonzero(kernel), strict=True):
        out += kernel[i, j] * np.roll(padded, (i - kh // 2, j - kw // 2), axis=(0, 1))
    return np.clip(np.round(out[kh:-kh, kw:-kw]), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def sharp():
    return skimage.data.astronaut()[40:136, 160:256].copy()  # 96x96 face crop


def test_wiener_with_the_true_kernel_beats_the_blurred_input(sharp):
    kernel = _motion_kernel()
    blurred = _convolve(sharp, kernel)
    restored = baselines.wiener_deconvolve(blurred, kernel)
    assert restored.shape == sharp.shape and restored.dtype == np.uint8
    assert psnr(sharp, restored) > psnr(sharp, blurred) + 3.0


def test_wiener_kernel_orientation_matters(sharp):
    # The flipped kernel is the wrong PSF: if it scored as well, the convention would be untested.
    kernel = _motion_kernel()
    blurred = _convolve(sharp, kernel)
    right = psnr(sharp, baselines.wiener_deconvolve(blurred, kernel))
    wrong = psnr(sharp, baselines.wiener_deconvolve(blurred, kernel[::-1, ::-1]))
    assert right > wrong + 5.0


def test_wiener_restores_near_the_borders_without_ringing(sharp):
    # Without padding and tapering, the FFT's wrap-around rings into this band (8-16 px from
    # the edge); the outermost pixels depend on content outside the frame and are left out.
    kernel = _motion_kernel()
    blurred = _convolve(sharp, kernel)
    restored = baselines.wiener_deconvolve(blurred, kernel)
    border = np.zeros(sharp.shape[:2], bool)
    border[8:-8, 8:-8] = True
    border[16:-16, 16:-16] = False
    assert psnr(sharp[border], restored[border]) > psnr(sharp[border], blurred[border]) + 3.0


def test_wiener_with_an_identity_kernel_changes_almost_nothing(sharp):
    gray = sharp[:, :, 1]
    restored = baselines.wiener_deconvolve(gray, np.ones((1, 1)))
    assert restored.shape == gray.shape
    assert np.abs(restored.astype(int) - gray.astype(int)).max() <= 1


@pytest.mark.parametrize(
    "kernel, message",
    [
        (np.ones(5), "2-D"),
        (-np.ones((3, 3)), "non-negative"),
        (np.zeros((3, 3)), "positive sum"),
    ],
)
def test_wiener_rejects_bad_kernels(sharp, kernel, message):
    with pytest.raises(ValueError, match=message):
        baselines.wiener_deconvolve(sharp, kernel)


def test_unsharp_mask_adds_detail_and_keeps_flat_areas(sharp):
    blurred = _convolve(sharp, np.full((5, 5), 1 / 25))
    sharpened = baselines.unsharp_mask(blurred)
    assert sharpened.shape == blurred.shape and sharpened.dtype == np.uint8

    def detail(image):
        return np.abs(np.diff(image.astype(float), axis=1)).mean()

    assert detail(sharpened) > 1.3 * detail(blurred)
    flat = np.full((32, 32, 3), 117, np.uint8)
    np.testing.assert_array_equal(baselines.unsharp_mask(flat), flat)


def test_baselines_reject_non_uint8_images():
    with pytest.raises(ValueError, match="uint8"):
        baselines.unsharp_mask(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        baselines.wiener_deconvolve(np.zeros((8, 8, 3), np.uint16), np.ones((3, 3)))


@pytest.mark.parametrize("gamma", [1.0, 2.2])
def test_wiener_inverts_the_data_pipelines_blur(sharp, gamma):
    # Same kernel convention as motion_blur.synthesize_blur, including blur in linear light.
    rng = np.random.default_rng(5)
    kernel = random_psf(rng, exposure=0.005, fraction=1.0)
    blurred, used = synthesize_blur(sharp, rng, kernel=kernel, gamma=gamma)
    restored = baselines.wiener_deconvolve(blurred, used, gamma=gamma)
    assert psnr(sharp, restored) > psnr(sharp, blurred) + 3.0
    if gamma != 1.0:
        mismatched = baselines.wiener_deconvolve(blurred, used)
        assert psnr(sharp, restored) > psnr(sharp, mismatched)
