"""Classical reference restorations for the evaluation table.

- `unsharp_mask`: blind sharpening with OpenCV (what a user gets without a model).
- `wiener_deconvolve`: non-blind deconvolution given the blur kernel. With the
  true kernel of synthetic blur it is a strong reference a learned model has to
  justify itself against; on real blur the kernel is unknown, so it is not used.

Both take and return uint8 images `(H, W)` or `(H, W, C)`.
"""

import cv2
import numpy as np

DEFAULT_UNSHARP_SIGMA = 2.0
DEFAULT_UNSHARP_AMOUNT = 1.0
# Noise-to-signal power ratio of the Wiener filter, for images scaled to [0, 1]. On the 7
# embedded photos x 4 seeds of synthesize_blur's default kernels, the PSNR gain over the
# blurred input was mean/worst 6.3/1.0 dB at 3e-4, 7.8/3.7 at 1e-3, 7.4/4.4 at 3e-3 and
# 5.5/3.2 at 1e-2: 3e-3 has the best worst case. Smaller values ring, larger stay blurry.
DEFAULT_WIENER_NSR = 3e-3


def _check_uint8_image(image, name="image"):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            f"expected a uint8 (H, W) or (H, W, C) {name}. "
            f"Received: dtype={image.dtype}, shape={image.shape}"
        )
    return image


def unsharp_mask(image, sigma=DEFAULT_UNSHARP_SIGMA, amount=DEFAULT_UNSHARP_AMOUNT):
    """Sharpens by adding back the difference to a Gaussian-blurred copy.

    `out = image + amount * (image - GaussianBlur(image, sigma))`, saturated to 0..255.

    Args:
        image: uint8 array `(H, W)` or `(H, W, C)`.
        sigma: float. Standard deviation of the Gaussian in pixels. Defaults to 2.0.
        amount: float. Strength of the added detail. Defaults to 1.0.

    Returns:
        uint8 array of the same shape.
    """
    image = _check_uint8_image(image)
    smooth = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return cv2.addWeighted(image, 1.0 + amount, smooth, -amount, 0.0)


def _kernel_to_otf(kernel, shape):
    """Transfer function of `kernel` (centred at index k // 2) on an FFT grid of `shape`."""
    padded = np.zeros(shape, dtype=np.float64)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    # Move the kernel centre to (0, 0) so the filter does not shift the image.
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def _circular_filter(image, otf):
    spectrum = np.fft.rfft2(image, axes=(0, 1))
    if image.ndim == 3:
        otf = otf[:, :, None]
    return np.fft.irfft2(spectrum * otf, s=image.shape[:2], axes=(0, 1))


def _taper_edges(image, otf, width):
    """Blends the outer `width` pixels into a circularly blurred copy (as MATLAB's edgetaper).

    The FFT treats the image as periodic; without this the jump between opposite
    borders is deconvolved into ringing that spreads into the picture.
    """
    height, width_px = image.shape[:2]
    blurred = _circular_filter(image, otf)

    def ramp(length):
        distance = np.minimum(np.arange(length), np.arange(length)[::-1]).astype(np.float64)
        return np.clip(distance / max(width, 1), 0.0, 1.0)

    alpha = np.outer(ramp(height), ramp(width_px))
    if image.ndim == 3:
        alpha = alpha[:, :, None]
    return alpha * image + (1.0 - alpha) * blurred


def wiener_deconvolve(image, kernel, nsr=DEFAULT_WIENER_NSR, gamma=1.0):
    """Wiener deconvolution of a blurred uint8 image with a known blur kernel.

    The kernel is the point spread function in the convolution sense, centred at
    index `(kh // 2, kw // 2)`: the blurred image is `sum_k kernel[k] * sharp[x - k + c]`.
    Borders are handled by reflect-padding by twice the kernel size and tapering the
    padded edges, then cropping back.

    Args:
        image: uint8 array `(H, W)` or `(H, W, C)`. The blurred image.
        kernel: float array `(kh, kw)`, non-negative; normalised to sum 1 here.
        nsr: float. Noise-to-signal power ratio (images scaled to [0, 1]); larger
            values suppress ringing and noise at the cost of sharpness. Defaults to 3e-3.
        gamma: float. Deconvolve in linear light, `value ** gamma`, for images blurred
            that way (`motion_blur.synthesize_blur(gamma=...)`). Defaults to 1.0.

    Returns:
        uint8 array of the same shape as `image`.

    Raises:
        ValueError: for a kernel that is not 2-D, has negative entries or sums to 0.
    """
    image = _check_uint8_image(image)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"expected a 2-D blur kernel. Received: shape={kernel.shape}")
    if np.any(kernel < 0) or kernel.sum() <= 0:
        raise ValueError("blur kernel must be non-negative with a positive sum")
    if nsr <= 0:
        raise ValueError(f"nsr must be positive. Received: nsr={nsr}")
    if gamma <= 0:
        raise ValueError(f"gamma must be positive. Received: gamma={gamma}")
    kernel = kernel / kernel.sum()

    pad = 2 * max(kernel.shape)
    pad_width = [(pad, pad), (pad, pad)] + [(0, 0)] * (image.ndim - 2)
    linear = (image.astype(np.float64) / 255.0) ** gamma
    padded = np.pad(linear, pad_width, mode="symmetric")
    otf = _kernel_to_otf(kernel, padded.shape[:2])
    padded = _taper_edges(padded, otf, width=max(kernel.shape))

    wiener = np.conj(otf) / (np.abs(otf) ** 2 + nsr)
    restored = _circular_filter(padded, wiener)
    restored = restored[pad : pad + image.shape[0], pad : pad + image.shape[1]]
    restored = np.clip(restored, 0.0, 1.0) ** (1.0 / gamma)
    return np.round(restored * 255.0).astype(np.uint8)
