"""Full-image RGB PSNR and SSIM, computed exactly as scikit-image computes them.

Two implementations of the same definitions:

- `psnr`, `ssim`: numpy, on uint8 images, for evaluation. They equal
  `skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)` and
  `skimage.metrics.structural_similarity(a, b, data_range=255, channel_axis=-1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` to float64
  rounding (the tests check this against scikit-image).
- `psnr_tf`, `ssim_tf` in `keras_deblur.metrics_tf`: TensorFlow, graph-compatible,
  on batches of model-range float images `[-1, 1]`, for validation inside
  `test_step`. They quantise to the 256 uint8 levels first, so they agree with the
  numpy versions on the saved uint8 images to within 1e-3. They live apart so that
  evaluating a `.tflite` generator never imports TensorFlow.

SSIM definition (Wang et al., 2004, with scikit-image's conventions): per
channel, local means, variances and covariance are weighted by an 11x11
Gaussian window (sigma 1.5, truncated at 3.5 sigma, so radius 5), with
population (not sample) covariance, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2.
The SSIM map is averaged over the pixels whose whole window lies inside the
image (scikit-image filters with reflect padding and then crops 5 pixels per
side, which is the same as a "valid" filter), then over the three channels.

Comparing with the paper: DeblurGAN (Kupyn et al., CVPR 2018) reports PSNR 28.7
and SSIM 0.958 on GoPro. That SSIM came from a different SSIM variant, so do not
compare it with numbers from this module. The reference repository
(KupynOrest/DeblurGAN) shows two variants, neither of them this one: the later
`test.py` scores SSIM with the `pyssim` package's `SSIM(pil_fake).cw_ssim_value(
pil_real)`, i.e. complex-wavelet SSIM (CW-SSIM, Sampat et al., 2009) on PIL
images, a different index altogether; the earlier `util/metrics.py` SSIM uses an
11x11 Gaussian centred half a pixel off, zero padding with the map averaged over
the whole image, and constants for a data range of 1. SSIM values from different
implementations are not interchangeable; PSNR is far less sensitive to such
choices. Compare our SSIM only with numbers produced by this module or by
scikit-image with the settings above.
"""

import math

import cv2
import numpy as np

DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# Radius as scipy.ndimage computes it: int(truncate * sigma + 0.5) = 5 -> 11x11 window.
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_WINDOW = 2 * SSIM_RADIUS + 1
# Values are shifted by this before the window statistics so float32 keeps
# precision in E[x^2] - E[x]^2; variances do not change and the means are shifted back.
SSIM_CENTRE = 127.5


def gaussian_window_1d(sigma=SSIM_SIGMA, radius=SSIM_RADIUS):
    """Normalised 1-D Gaussian taps, as `scipy.ndimage.gaussian_filter1d` builds them.

    Args:
        sigma: float. Standard deviation in pixels. Defaults to 1.5.
        radius: int. Half-width; the window has `2 * radius + 1` taps. Defaults to 5.

    Returns:
        float64 array of shape `(2 * radius + 1,)` summing to 1.
    """
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def _check_pair(a, b, name_a="a", name_b="b"):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"images must have the same shape. Received: {name_a}.shape={a.shape}, "
            f"{name_b}.shape={b.shape}"
        )
    for name, image in ((name_a, a), (name_b, b)):
        if image.dtype != np.uint8:
            raise ValueError(f"expected uint8 images. Received: {name}.dtype={image.dtype}")
        if image.ndim not in (2, 3):
            raise ValueError(
                f"expected an (H, W) or (H, W, C) image. Received: {name}.shape={image.shape}"
            )
    return a, b


def psnr(a, b):
    """Peak signal-to-noise ratio in dB between two uint8 images (data range 255).

    Args:
        a: uint8 array `(H, W)` or `(H, W, C)`. Reference image (e.g. the sharp one).
        b: uint8 array of the same shape. Image to score.

    Returns:
        float. `10 * log10(255^2 / MSE)` over all pixels and channels; `inf` for
        identical images (as scikit-image).

    Example:
        >>> psnr(np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8))
        0.0
    """
    a, b = _check_pair(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(DATA_RANGE**2 / mse))


def finite_mean(values):
    """Mean of the finite values; NaN when there are none.

    Identical images have an infinite PSNR; a mean over images leaves them out
    rather than becoming infinite itself. Reports written as JSON turn the NaN
    into `null` (`json_safe`).
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def json_safe(value):
    """`value` with every non-finite float (inf PSNR, NaN) replaced by None, recursively.

    JSON has no inf or NaN, and a field that is sometimes a number and sometimes
    a string breaks its readers: reports hold a number or `null`, and say in a
    field of their own when images were identical.
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def _valid_filter(image, taps):
    """Separable 'valid' correlation over the first two axes of an (H, W, ...) float64 array.

    OpenCV filters every channel in one float64 pass (about 20x faster than a
    numpy loop over taps on 1280x720); the border mode is irrelevant because
    only pixels whose whole window lies inside the image are kept.
    """
    radius = len(taps) // 2
    height, width = image.shape[:2]
    flat = np.ascontiguousarray(image.reshape(height, width, -1))
    filtered = cv2.sepFilter2D(flat, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)
    filtered = filtered.reshape(image.shape)
    return filtered[radius : height - radius, radius : width - radius]


def ssim_from_moments(mu_x, mu_y, e_xx, e_yy, e_xy):
    """Per-pixel SSIM from Gaussian-window moments of images centred on `SSIM_CENTRE`.

    Arithmetic only, so numpy arrays and TF tensors alike (`ssim_map`, `ssim_tf`).
    """
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov_xy = e_xy - mu_x * mu_y
    mu_x = mu_x + SSIM_CENTRE
    mu_y = mu_y + SSIM_CENTRE
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim_map(a, b):
    """Per-pixel SSIM over the valid region (pixels whose window lies inside the image).

    Args:
        a: uint8 array `(H, W)` or `(H, W, C)`, H and W at least 11.
        b: uint8 array of the same shape.

    Returns:
        float64 array `(H - 10, W - 10)` or `(H - 10, W - 10, C)`.
    """
    a, b = _check_pair(a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels. "
            f"Received: shape={a.shape}"
        )
    x = a.astype(np.float64) - SSIM_CENTRE
    y = b.astype(np.float64) - SSIM_CENTRE
    taps = gaussian_window_1d()
    # One pass over a stack of the five quantities the statistics need.
    stats = _valid_filter(np.stack([x, y, x * x, y * y, x * y], axis=-1), taps)
    return ssim_from_moments(*np.moveaxis(stats, -1, 0))


def ssim(a, b):
    """Structural similarity of two uint8 images, as scikit-image computes it.

    Gaussian window (sigma 1.5, 11x11), population covariance, data range 255,
    mean over the valid region of each channel, then over channels. See the
    module docstring for why this is not comparable with the paper's 0.958.

    Args:
        a: uint8 array `(H, W)` or `(H, W, C)`, H and W at least 11. Reference image.
        b: uint8 array of the same shape. Image to score.

    Returns:
        float in `[-1, 1]`; 1 for identical images.
    """
    values = ssim_map(a, b)
    if values.ndim == 3:
        return float(np.mean(values.mean(axis=(0, 1), dtype=np.float64)))
    return float(values.mean(dtype=np.float64))
