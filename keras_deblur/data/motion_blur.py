"""Synthetic camera-shake blur from random trajectories (DeblurGAN, Sec. 3.1).

Kupyn et al., "DeblurGAN: Blind Motion Deblurring Using Conditional Adversarial
Networks", CVPR 2018, generate training blur with the random-trajectory model of
Boracchi and Foi, "Modeling the Performance of Image Restoration From Motion
Blur", IEEE TIP 2012: a particle moves on the plane with a velocity that gets a
Gaussian kick, an inertial pull back towards the origin and, rarely, an impulsive
reversal at every step; its speed is renormalised so that the path always has
the same length. The path, sampled over part or all of the exposure, is splatted
at sub-pixel precision into a point-spread function (PSF).

Differences from the reference PyTorch repository, on purpose:

- Kernels sum to 1, so blurring preserves brightness (the reference min-max
  normalises the blurred image instead, which changes its contrast).
- Kernels are centred on their centre of mass (to the nearest pixel, keeping
  the path's sub-pixel phase as the reference does), so the blurred image is
  shifted by less than half a pixel with respect to the sharp one (the
  reference centres the bounding box of the whole path, which shifts images
  blurred with partial exposures by up to tens of pixels).
- Kernels are as small as their support allows (odd size, centre pixel at
  `size // 2`) rather than a fixed 64x64 canvas, which makes blurring faster.
- The reference blurs with `scipy.signal.fftconvolve` and zero borders; we
  reflect at the borders so that edges do not darken.

Everything is seeded through a `numpy.random.Generator`.
"""

import math

import cv2
import numpy as np
import scipy.fft

# Exposure ("anxiety") levels drawn by the reference's dataset-generation script.
TRAINING_EXPOSURES = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)
# Exposure fractions drawn by that script (parts 1-3 of the reference's 1/100, 1/10, 1/2, 1).
TRAINING_FRACTIONS = (0.1, 0.5, 1.0)


def random_trajectory(rng, num_steps=2000, max_length=60.0, exposure=None):
    """Draws a random camera-shake trajectory (Boracchi and Foi 2012).

    The model's random parameters are drawn as in the reference: centripetal
    pull `0.7 * U(0, 1)`, probability of a big shake `0.2 * U(0, 1)` (scaled by
    `exposure` at each step), Gaussian shake `10 * U(0, 1)` and a uniform initial
    direction. The random draws are vectorised; the Markov recurrence itself
    cannot be: each step's renormalised velocity depends on the position the
    steps before it reached, so it runs as a tight scalar loop (about 0.5 ms
    for 2000 steps).

    Args:
        rng: `numpy.random.Generator`.
        num_steps: int. Number of positions. Defaults to 2000.
        max_length: float. Length of the whole path in pixels (not the extent
            of the kernel, which is usually much smaller because the path
            wanders). Defaults to 60.
        exposure: float or None. The "anxiety" parameter scaling every
            perturbation; 0 gives a straight line. `None` draws
            `0.1 * U(0, 1)` as the reference's trajectory class does.
            Defaults to None.

    Returns:
        `np.ndarray` complex128 of shape `(num_steps,)`: positions in pixels
        (real part x, imaginary part y), starting at 0.
    """
    if num_steps < 2:
        raise ValueError(f"num_steps must be at least 2. Received: num_steps={num_steps}")
    if max_length <= 0:
        raise ValueError(f"max_length must be positive. Received: max_length={max_length}")
    if exposure is None:
        exposure = 0.1 * rng.uniform()
    if exposure < 0:
        raise ValueError(f"exposure must be >= 0. Received: exposure={exposure}")
    centripetal = 0.7 * rng.uniform()
    big_shake_probability = 0.2 * rng.uniform()
    gaussian_shake = 10.0 * rng.uniform()
    initial_angle = 2.0 * np.pi * rng.uniform()

    step = max_length / (num_steps - 1)
    count = num_steps - 1
    kicks = rng.standard_normal((count, 2)) @ np.array([1.0, 1j])
    kicks = (exposure * step * gaussian_shake) * kicks
    # A big shake reverses the velocity with some angular jitter: v <- v * (1 + 2 e^{i(pi + u)}).
    big_shake = rng.uniform(size=count) < big_shake_probability * exposure
    jitter = rng.uniform(size=count) - 0.5
    gain = np.where(big_shake, 1.0 + 2.0 * np.exp(1j * (np.pi + jitter)), 1.0)
    pull = exposure * step * centripetal

    velocity = step * complex(math.cos(initial_angle), math.sin(initial_angle))
    position = 0j
    positions = [0j]
    append = positions.append
    for g, kick in zip(gain.tolist(), kicks.tolist(), strict=True):
        new_velocity = velocity * g + kick - pull * position
        try:
            velocity = new_velocity * (step / abs(new_velocity))
        except ZeroDivisionError:  # a (measure-zero) standstill keeps the previous direction
            pass
        position += velocity
        append(position)
    return np.asarray(positions, dtype=np.complex128)


def _exposure_weights(num_samples, fraction):
    """Time each sample covers inside the exposure window [0, fraction * (n - 1)].

    Sample t stands for the step that ends at it, the interval [t - 1, t], as in
    the reference; partial overlaps at the window's end get partial weight, so
    short exposures are not quantised.
    """
    end = fraction * (num_samples - 1)
    t = np.arange(num_samples, dtype=np.float64)
    weights = np.clip(np.minimum(t, end) - np.maximum(t - 1.0, 0.0), 0.0, 1.0)
    if end == 0.0:
        weights[0] = 1.0
    return weights


def trajectory_to_psf(trajectory, fraction=1.0, kernel_size=None):
    """Splats a trajectory into a point-spread function with bilinear weights.

    Args:
        trajectory: complex array of shape `(n,)`, positions in pixels.
        fraction: float in (0, 1]. Part of the trajectory the shutter is open
            for, from its start (the reference uses 1/100, 1/10, 1/2 and 1).
            Defaults to 1.
        kernel_size: int or None. Size of the square kernel; `None` picks the
            smallest odd size that holds the support. A given size must hold
            the support (ValueError otherwise). Defaults to None.

    Returns:
        `np.ndarray` float32 of shape `(k, k)`, non-negative, summing to 1,
        with its centre of mass within half a pixel of pixel `(k // 2, k // 2)`
        (so blurring shifts the image by less than half a pixel). Rows are y
        and columns x.
    """
    trajectory = np.asarray(trajectory)
    if trajectory.ndim != 1 or trajectory.size == 0:
        raise ValueError(
            f"trajectory must be a non-empty 1-D array. Received shape {trajectory.shape}"
        )
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]. Received: fraction={fraction}")
    weights = _exposure_weights(trajectory.size, fraction)
    used = weights > 0
    points, weights = trajectory[used], weights[used]
    # Keep the start on the pixel grid, as the reference does (it matters for
    # the footprint of short exposures), and move the centre of mass to the
    # nearest pixel of the kernel's centre.
    points = points - trajectory[0]
    centre_of_mass = np.sum(weights * points) / np.sum(weights)
    points = points - complex(round(centre_of_mass.real), round(centre_of_mass.imag))

    # Bilinear splatting touches floor(p) and floor(p) + 1 along each axis.
    radius = int(np.ceil(max(np.abs(points.real).max(), np.abs(points.imag).max())))
    needed = 2 * radius + 1
    if kernel_size is None:
        kernel_size = needed
    elif kernel_size < needed:
        raise ValueError(
            f"kernel_size {kernel_size} is too small for this trajectory, which needs {needed}."
        )
    centre = kernel_size // 2
    x = points.real + centre
    y = points.imag + centre
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    # Clipping only touches corners whose bilinear weight is exactly 0 (integer coordinates).
    x1 = np.minimum(x0 + 1, kernel_size - 1)
    y1 = np.minimum(y0 + 1, kernel_size - 1)
    index = np.concatenate(
        [y0 * kernel_size + x0, y0 * kernel_size + x1, y1 * kernel_size + x0, y1 * kernel_size + x1]
    )
    value = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    value *= np.tile(weights, 4)
    kernel = np.bincount(index, weights=value, minlength=kernel_size * kernel_size)
    kernel = kernel.reshape(kernel_size, kernel_size)
    return (kernel / kernel.sum()).astype(np.float32)


def _choose(rng, value, name):
    """A fixed float, or a uniform pick from a sequence of them."""
    if value is None or np.isscalar(value):
        return value
    value = tuple(value)
    if not value:
        raise ValueError(f"{name} must be a number or a non-empty sequence. Received: {name}=()")
    return value[rng.integers(len(value))]


def random_psf(
    rng,
    max_length=60.0,
    exposure=TRAINING_EXPOSURES,
    fraction=TRAINING_FRACTIONS,
    num_steps=2000,
    kernel_size=None,
):
    """Draws a random motion-blur kernel.

    Defaults follow the reference's dataset script: exposure drawn from
    `TRAINING_EXPOSURES`, exposure fraction from `TRAINING_FRACTIONS`.

    Args:
        rng: `numpy.random.Generator`.
        max_length: float. Path length in pixels. Defaults to 60.
        exposure: float, sequence of floats (one picked uniformly) or None
            (`0.1 * U(0, 1)`, the reference trajectory's own default).
        fraction: float or sequence of floats (one picked uniformly) in (0, 1].
        num_steps: int. Trajectory samples. Defaults to 2000.
        kernel_size: int or None. See `trajectory_to_psf`.

    Returns:
        `np.ndarray` float32 `(k, k)`, non-negative, summing to 1.

    Example:

    >>> kernel = random_psf(np.random.default_rng(0))
    >>> round(float(kernel.sum()), 6)
    1.0
    """
    exposure = _choose(rng, exposure, "exposure")
    fraction = _choose(rng, fraction, "fraction")
    trajectory = random_trajectory(rng, num_steps, max_length, exposure)
    return trajectory_to_psf(trajectory, fraction, kernel_size)


def kernel_extent(kernel, threshold=0.01):
    """Size of a kernel's visible support, in pixels.

    The larger of the height and width of the bounding box of the pixels whose
    value exceeds `threshold` times the peak. This is the statistic the issue's
    reference figures use (median ~8 px at the default exposure).

    Args:
        kernel: 2-D array.
        threshold: float. Fraction of the peak. Defaults to 0.01.

    Returns:
        int.
    """
    kernel = np.asarray(kernel)
    rows, cols = np.nonzero(kernel > threshold * kernel.max())
    return int(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)


def blur_image(image, kernel):
    """Convolves every channel of an image with a kernel, reflecting at borders.

    A true convolution (the kernel is flipped, unlike `cv2.filter2D`'s
    correlation) with the kernel's pixel `(kh // 2, kw // 2)` as its centre,
    and border mode reflect-101 (`numpy.pad(mode="reflect")`). Kernels under
    130 pixels go through OpenCV's direct `filter2D`; larger ones through a
    real FFT (`scipy.fft`), except on images of at most 200 pixels a side
    (128-pixel crops and their margins), which `filter2D` takes at any kernel
    size. `bench/bench_data.py` measured the FFT level with `filter2D` (whose
    DFT path OpenCV takes for such kernels) for 64x64 kernels on 1280x720
    images (66 vs 67 CPU ms) and about 40% cheaper on 256-pixel training crops
    (286x286 with a 31x31 kernel: 4.0 vs 6.8 CPU ms); on 140- to 200-pixel
    regions with 13- to 45-pixel kernels `filter2D` took 0.5-1.8 CPU ms
    against 0.9-2.8 for the FFT (one run, load average 12).

    Args:
        image: array `(height, width)` or `(height, width, channels)`, any
            numeric dtype.
        kernel: 2-D float array.

    Returns:
        `np.ndarray` float32 of the image's shape, in the image's value scale.
    """
    image = np.asarray(image)
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D. Received shape {kernel.shape}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C). Received shape {image.shape}")
    source = np.asarray(image, dtype=np.float32)
    planes = source if source.ndim == 3 else source[:, :, None]
    if kernel.size < _DIRECT_MAX_AREA or max(planes.shape[:2]) <= _DIRECT_MAX_SIDE:
        blurred = _blur_direct(planes, kernel)
    else:
        blurred = _blur_fft(planes, kernel)
    return blurred.reshape(image.shape)


# OpenCV convolves kernels smaller than this directly (and faster than an FFT).
_DIRECT_MAX_AREA = 130
# On images up to this side, filter2D beats the FFT whatever the kernel.
_DIRECT_MAX_SIDE = 200


def _blur_direct(planes, kernel):
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    kernel_h, kernel_w = kernel.shape
    anchor = (kernel_w - 1 - kernel_w // 2, kernel_h - 1 - kernel_h // 2)
    # filter2D takes at most 4 channels at once.
    chunks = [
        cv2.filter2D(
            np.ascontiguousarray(planes[:, :, start : start + 4]),
            cv2.CV_32F,
            flipped,
            anchor=anchor,
            borderType=cv2.BORDER_REFLECT_101,
        ).reshape(planes.shape[0], planes.shape[1], -1)
        for start in range(0, planes.shape[2], 4)
    ]
    return np.concatenate(chunks, axis=2)


def _blur_fft(planes, kernel):
    kernel_h, kernel_w = kernel.shape
    # Padding so that the "valid" part of the linear convolution is the image,
    # with the kernel centred on (kh // 2, kw // 2).
    pad = (
        (kernel_h - 1 - kernel_h // 2, kernel_h // 2),
        (kernel_w - 1 - kernel_w // 2, kernel_w // 2),
        (0, 0),
    )
    padded = np.pad(planes, pad, mode="reflect")
    shape = (
        scipy.fft.next_fast_len(padded.shape[0] + kernel_h - 1, real=True),
        scipy.fft.next_fast_len(padded.shape[1] + kernel_w - 1, real=True),
    )
    spectrum = scipy.fft.rfft2(padded, shape, axes=(0, 1))
    spectrum *= scipy.fft.rfft2(kernel, shape)[:, :, None]
    full = scipy.fft.irfft2(spectrum, shape, axes=(0, 1))
    height, width = planes.shape[:2]
    return full[kernel_h - 1 : kernel_h - 1 + height, kernel_w - 1 : kernel_w - 1 + width]


def synthesize_blur(
    sharp,
    rng,
    kernel=None,
    max_length=60.0,
    exposure=TRAINING_EXPOSURES,
    fraction=TRAINING_FRACTIONS,
    num_steps=2000,
    gamma=1.0,
    noise_std=0.0,
    shot_noise=0.0,
):
    """Blurs a sharp photo with a random (or given) motion kernel.

    Args:
        sharp: uint8 or uint16 array `(height, width)` or `(height, width, C)`.
        rng: `numpy.random.Generator`, for the kernel and the noise.
        kernel: 2-D float array or None. A kernel to use instead of drawing
            one. Defaults to None.
        max_length, exposure, fraction, num_steps: see `random_psf`.
        gamma: float. Blur in linear light: the image is raised to `gamma`
            (pixel values scaled to [0, 1]) before blurring and to `1 / gamma`
            after, as a camera integrates light before its tone curve.
            `1.0` blurs the encoded values like the reference; 2.2 is typical
            for sRGB photos. Defaults to 1.0.
        noise_std: float. Standard deviation of additive Gaussian noise, in
            units of the full range (0.01 is ~2.6 levels of 255), added after
            blurring. Defaults to 0.
        shot_noise: float. Signal-dependent noise: a pixel of value `v`
            (in [0, 1], after blurring) gets Gaussian noise of variance
            `shot_noise * v + noise_std ** 2`, the Poisson-Gaussian model of a
            sensor (photon shot noise plus read noise; Foi et al., "Practical
            Poissonian-Gaussian noise modeling and fitting for single-image
            raw-data", IEEE TIP 2008). `1e-4` gives ~1.8 levels of 255 at
            mid-grey. Defaults to 0.

    Returns:
        `(blurred, kernel)`: the blurred image with `sharp`'s shape and dtype,
        and the float32 kernel used.
    """
    sharp = np.asarray(sharp)
    if sharp.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"sharp must be uint8 or uint16. Received dtype {sharp.dtype}")
    if gamma <= 0:
        raise ValueError(f"gamma must be positive. Received: gamma={gamma}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0. Received: noise_std={noise_std}")
    if shot_noise < 0:
        raise ValueError(f"shot_noise must be >= 0. Received: shot_noise={shot_noise}")
    if kernel is None:
        kernel = random_psf(rng, max_length, exposure, fraction, num_steps)
    peak = float(np.iinfo(sharp.dtype).max)
    if gamma == 1.0:
        linear = sharp.astype(np.float32) * np.float32(1.0 / peak)
    elif sharp.dtype == np.uint8:
        table = np.power(np.arange(256, dtype=np.float32) / 255.0, gamma).astype(np.float32)
        linear = table[sharp]
    else:
        linear = np.power(sharp.astype(np.float32) / peak, np.float32(gamma))
    blurred = blur_image(linear, kernel)
    if gamma != 1.0:
        blurred = np.power(np.maximum(blurred, 0.0), np.float32(1.0 / gamma))
    if shot_noise > 0:
        variance = np.float32(shot_noise) * np.maximum(blurred, 0.0) + np.float32(noise_std**2)
        blurred += rng.standard_normal(blurred.shape, dtype=np.float32) * np.sqrt(variance)
    elif noise_std > 0:
        blurred += rng.normal(0.0, noise_std, blurred.shape).astype(np.float32)
    blurred = np.clip(np.rint(blurred * peak), 0, peak).astype(sharp.dtype)
    return blurred, kernel


def blur_window(image, window, rng, kernel, **blur_options):
    """Blurs one window of an image as blurring the whole image and cropping would.

    Only the window plus the kernel's radius around it is blurred: the same
    pixels (up to float rounding of a different-size filter) for a fraction of
    the work on a large photo.

    Args:
        image: uint8 or uint16 array `(height, width[, channels])`.
        window: `(top, left, height, width)` inside `image`.
        rng: `numpy.random.Generator`, for the noise (nothing is drawn without it).
        kernel: 2-D float array summing to 1.
        **blur_options: `gamma`, `noise_std` and `shot_noise` of `synthesize_blur`.

    Returns:
        `(blurred, sharp)`: the window blurred, and the window of `image` itself
        (a view: copy it before changing it).
    """
    top, left, height, width = window
    margin = max(kernel.shape) // 2
    region_top, region_left = max(top - margin, 0), max(left - margin, 0)
    region = image[
        region_top : min(top + height + margin, image.shape[0]),
        region_left : min(left + width + margin, image.shape[1]),
    ]
    blurred, _ = synthesize_blur(region, rng, kernel=kernel, **blur_options)
    row, col = top - region_top, left - region_left
    return (
        blurred[row : row + height, col : col + width],
        image[top : top + height, left : left + width],
    )
