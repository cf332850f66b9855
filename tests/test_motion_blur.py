"""Random-trajectory motion blur: kernels, their size distribution, applying them."""

import numpy as np
import pytest
from scipy import ndimage

from keras_deblur.data.motion_blur import (
    blur_image,
    kernel_extent,
    random_psf,
    random_trajectory,
    synthesize_blur,
    trajectory_to_psf,
)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"exposure": None, "fraction": 1.0},
        {"exposure": 0.0, "fraction": 1.0},
        {"exposure": 0.005, "fraction": 0.01},
        {"exposure": 0.1, "fraction": 0.5, "max_length": 5.0},
    ],
)
def test_kernels_are_non_negative_float32_and_sum_to_one(options):
    rng = np.random.default_rng(7)
    for _ in range(10):
        kernel = random_psf(rng, **options)
        assert kernel.dtype == np.float32
        assert kernel.ndim == 2 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2
        assert kernel.min() >= 0.0
        assert abs(float(kernel.astype(np.float64).sum()) - 1.0) < 1e-6


def test_kernels_are_deterministic_per_seed_and_differ_across_seeds():
    first = random_psf(np.random.default_rng(3))
    again = random_psf(np.random.default_rng(3))
    other = random_psf(np.random.default_rng(4))
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)


def test_trajectory_has_the_requested_path_length():
    trajectory = random_trajectory(np.random.default_rng(0), num_steps=2000, max_length=60.0)
    assert trajectory.shape == (2000,)
    assert trajectory[0] == 0
    np.testing.assert_allclose(np.abs(np.diff(trajectory)).sum(), 60.0, rtol=1e-9)


def test_zero_exposure_gives_a_straight_line_as_long_as_the_path():
    kernel = random_psf(np.random.default_rng(1), exposure=0.0, fraction=1.0, max_length=30.0)
    # A straight 30 px path covers 31 pixels along its main axis (bilinear ends).
    assert 30 <= kernel_extent(kernel) <= 32


def test_kernel_centre_of_mass_is_within_half_a_pixel_of_the_centre():
    rng = np.random.default_rng(11)
    for _ in range(20):
        kernel = random_psf(rng).astype(np.float64)
        rows, cols = np.indices(kernel.shape)
        centre = kernel.shape[0] // 2
        assert abs((rows * kernel).sum() - centre) <= 0.5 + 1e-6
        assert abs((cols * kernel).sum() - centre) <= 0.5 + 1e-6


def test_longer_max_length_gives_wider_kernels():
    rng = np.random.default_rng(5)
    short = [kernel_extent(random_psf(rng, max_length=15.0, fraction=1.0)) for _ in range(30)]
    long = [kernel_extent(random_psf(rng, max_length=60.0, fraction=1.0)) for _ in range(30)]
    assert np.median(long) > 2 * np.median(short)


@pytest.mark.parametrize(
    "exposure, median, p5, p95",
    # The figures, measured on 500 reference kernels (full exposure, 64 px canvas).
    [(None, 8, 4, 23), (0.005, 19, 13, 34)],
)
def test_kernel_extent_distribution_matches_the_reference(exposure, median, p5, p95):
    rng = np.random.default_rng(2024)
    extents = [kernel_extent(random_psf(rng, exposure=exposure, fraction=1.0)) for _ in range(200)]
    assert abs(np.median(extents) - median) <= 1.5
    assert abs(np.percentile(extents, 5) - p5) <= 2
    assert abs(np.percentile(extents, 95) - p95) <= 5


def test_kernel_extent_measures_the_bounding_box_above_one_percent():
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, 1:8] = 1.0  # 7 px wide
    kernel[2, 4] = 0.005  # below 1% of the peak: ignored
    assert kernel_extent(kernel) == 7


def test_trajectory_to_psf_rejects_bad_arguments():
    trajectory = random_trajectory(np.random.default_rng(0), exposure=0.0, max_length=20.0)
    with pytest.raises(ValueError, match="fraction"):
        trajectory_to_psf(trajectory, fraction=0.0)
    with pytest.raises(ValueError, match="kernel_size"):
        trajectory_to_psf(trajectory, kernel_size=9)
    assert trajectory_to_psf(trajectory, kernel_size=45).shape == (45, 45)


# Small kernels or small images take OpenCV's filter2D, large kernels on large images the FFT.
@pytest.mark.parametrize("image_shape", [(20, 23, 3), (20, 230, 3)])
@pytest.mark.parametrize("kernel_shape", [(5, 5), (4, 6), (7, 3), (15, 15), (16, 12), (3, 50)])
def test_blur_image_is_a_reflect_101_convolution(kernel_shape, image_shape):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, image_shape).astype(np.float32)
    kernel = rng.uniform(size=kernel_shape).astype(np.float32)
    blurred = blur_image(image, kernel)
    channels = [image[:, :, c].astype(np.float64) for c in range(3)]
    expected = np.stack([ndimage.convolve(c, kernel, mode="mirror") for c in channels], axis=-1)
    assert blurred.dtype == np.float32 and blurred.shape == image.shape
    np.testing.assert_allclose(blurred, expected, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("size", [3, 13])
def test_blur_image_handles_grayscale_and_many_channels(size):
    image = np.random.default_rng(0).uniform(size=(24, 24, 6)).astype(np.float32)
    kernel = np.full((size, size), 1 / size**2, np.float32)
    many = blur_image(image, kernel)
    assert many.shape == image.shape
    for channel in (0, 4, 5):
        np.testing.assert_allclose(
            many[:, :, channel], blur_image(image[:, :, channel], kernel), atol=1e-6
        )


@pytest.mark.parametrize("gamma", [1.0, 2.2])
def test_a_constant_image_stays_constant(gamma):
    sharp = np.full((64, 64, 3), 137, np.uint8)
    blurred, _ = synthesize_blur(sharp, np.random.default_rng(0), gamma=gamma)
    np.testing.assert_array_equal(blurred, sharp)


def test_blur_lowers_high_frequency_energy_and_keeps_brightness():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    blurred, _ = synthesize_blur(sharp, rng, exposure=0.005, fraction=1.0)

    def high_frequency_energy(image):
        spectrum = np.abs(np.fft.fft2(image.astype(np.float64), axes=(0, 1))) ** 2
        frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(96), np.fft.fftfreq(96), indexing="ij"))
        return spectrum[frequency > 0.25].sum()

    assert high_frequency_energy(blurred) < 0.2 * high_frequency_energy(sharp)
    assert abs(blurred.mean() - sharp.mean()) < 1.0


def test_blur_shifts_the_image_by_less_than_half_a_pixel():
    sharp = np.zeros((81, 81), np.uint8)
    sharp[40, 40] = 255
    rng = np.random.default_rng(9)
    for fraction in (0.1, 0.5, 1.0):
        kernel = random_psf(rng, exposure=0.002, fraction=fraction)
        assert kernel_extent(kernel) > 3
        blurred = blur_image(sharp, kernel).astype(np.float64)
        rows, cols = np.indices(blurred.shape)
        assert abs((rows * blurred).sum() / blurred.sum() - 40) <= 0.5 + 1e-4
        assert abs((cols * blurred).sum() / blurred.sum() - 40) <= 0.5 + 1e-4


def test_gamma_blurs_in_linear_light():
    sharp = np.zeros((32, 32, 3), np.uint8)
    sharp[:, 16:] = 255
    kernel = np.zeros((1, 9), np.float32)
    kernel[0] = 1 / 9
    plain, _ = synthesize_blur(sharp, np.random.default_rng(0), kernel=kernel)
    linear, _ = synthesize_blur(sharp, np.random.default_rng(0), kernel=kernel, gamma=2.2)
    # Next to the edge 5/9 of the light arrives: 142 in encoded values, 255 * (5/9) ** (1/2.2) = 195
    # when blurred in linear light.
    assert plain[10, 16, 0] in (141, 142)
    assert linear[10, 16, 0] > plain[10, 16, 0] + 20


def test_noise_has_the_requested_standard_deviation_and_dtype_is_kept():
    sharp = np.full((128, 128), 32768, np.uint16)
    blurred, _ = synthesize_blur(sharp, np.random.default_rng(0), noise_std=0.02)
    assert blurred.dtype == np.uint16
    assert abs(blurred.astype(np.float64).std() / 65535 - 0.02) < 0.002


def test_synthesize_blur_rejects_float_images():
    with pytest.raises(ValueError, match="uint8 or uint16"):
        synthesize_blur(np.zeros((8, 8), np.float32), np.random.default_rng(0))


def test_shot_noise_grows_with_the_signal_and_adds_to_read_noise():
    rng = np.random.default_rng(0)
    dark, bright = np.full((128, 128), 6554, np.uint16), np.full((128, 128), 52428, np.uint16)
    options = {"kernel": np.ones((1, 1), np.float32), "noise_std": 0.002, "shot_noise": 1e-4}
    dark_noisy, _ = synthesize_blur(dark, rng, **options)
    bright_noisy, _ = synthesize_blur(bright, rng, **options)
    # Variance shot_noise * v + noise_std ** 2 at v = 0.1 and v = 0.8.
    for noisy, value in ((dark_noisy, 0.1), (bright_noisy, 0.8)):
        expected = np.sqrt(1e-4 * value + 0.002**2)
        assert abs(noisy.astype(np.float64).std() / 65535 - expected) < 0.05 * expected
    with pytest.raises(ValueError, match="shot_noise"):
        synthesize_blur(dark, rng, shot_noise=-1e-4)


def _trajectory_step_by_step(rng, num_steps, max_length, exposure):
    """Slow reference of `random_trajectory`: the same draws, one step at a time."""
    centripetal, big_shake_probability = 0.7 * rng.uniform(), 0.2 * rng.uniform()
    gaussian_shake, angle = 10.0 * rng.uniform(), 2.0 * np.pi * rng.uniform()
    step = max_length / (num_steps - 1)
    normals = rng.standard_normal((num_steps - 1, 2))
    shakes = rng.uniform(size=num_steps - 1) < big_shake_probability * exposure
    jitters = rng.uniform(size=num_steps - 1) - 0.5
    velocity, positions = step * np.exp(1j * angle), [0j]
    for normal, shake, jitter in zip(normals, shakes, jitters, strict=True):
        kick = exposure * step * gaussian_shake * complex(normal[0], normal[1])
        if shake:  # reversed, with some angular jitter
            velocity = velocity * (1.0 + 2.0 * np.exp(1j * (np.pi + jitter)))
        velocity = velocity + kick - exposure * step * centripetal * positions[-1]
        velocity = velocity / abs(velocity) * step
        positions.append(positions[-1] + velocity)
    return np.array(positions)


@pytest.mark.parametrize("seed, exposure", [(0, 0.005), (1, 0.1), (2, 0.0), (3, 1.0)])
def test_trajectory_matches_the_model_stepped_one_step_at_a_time(seed, exposure):
    trajectory = random_trajectory(np.random.default_rng(seed), 500, 30.0, exposure)
    expected = _trajectory_step_by_step(np.random.default_rng(seed), 500, 30.0, exposure)
    np.testing.assert_allclose(trajectory, expected, rtol=0, atol=1e-9)
