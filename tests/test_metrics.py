"""keras_deblur.metrics equals scikit-image; the TF versions equal the numpy ones."""

import math

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from keras_deblur import metrics, metrics_tf


def _skimage_ssim(a, b):
    return structural_similarity(
        a,
        b,
        data_range=255,
        channel_axis=-1 if a.ndim == 3 else None,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )


def _noisy_copy(image, rng, amplitude):
    noise = rng.integers(-amplitude, amplitude + 1, size=image.shape)
    return np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def _structured_pair(shape):
    """A photo crop and a blurred, shifted-brightness version of it."""
    photo = skimage.data.astronaut()[100 : 100 + shape[0], 150 : 150 + shape[1]]
    kernel = np.ones(5) / 5.0
    blurred = photo.astype(np.float64)
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, blurred)
    blurred = np.clip(blurred + 7.0, 0, 255).round().astype(np.uint8)
    return photo, blurred


def _random_pair(shape, seed, amplitude=40):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return a, _noisy_copy(a, rng, amplitude)


PAIRS = [
    pytest.param(*_random_pair((64, 64, 3), 0), id="random-64x64"),
    pytest.param(*_random_pair((37, 53, 3), 1), id="random-odd-37x53"),
    pytest.param(*_random_pair((11, 11, 3), 2), id="random-minimum-11x11"),
    pytest.param(*_random_pair((48, 30), 3), id="random-grayscale"),
    pytest.param(*_structured_pair((64, 96)), id="photo-blurred-64x96"),
    pytest.param(*_structured_pair((45, 71)), id="photo-blurred-odd-45x71"),
    pytest.param(*_random_pair((40, 40, 3), 4, amplitude=2), id="nearly-identical"),
]


@pytest.mark.parametrize("a, b", PAIRS)
def test_psnr_equals_skimage(a, b):
    expected = peak_signal_noise_ratio(a, b, data_range=255)
    assert metrics.psnr(a, b) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("a, b", PAIRS)
def test_ssim_equals_skimage(a, b):
    expected = _skimage_ssim(a, b)
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_window_is_11x11_gaussian_with_sigma_1_5():
    taps = metrics.gaussian_window_1d()
    assert taps.shape == (11,)
    assert taps.sum() == pytest.approx(1.0)
    assert taps[5] / taps[4] == pytest.approx(math.exp(0.5 / 1.5**2))


def test_ssim_is_not_the_uniform_window_variant():
    # Guards against silently computing the 7x7 uniform default of skimage.
    a, b = _structured_pair((64, 96))
    uniform = structural_similarity(a, b, data_range=255, channel_axis=-1)
    assert abs(metrics.ssim(a, b) - uniform) > 1e-3


def test_identical_images():
    a, _ = _random_pair((32, 32, 3), 5)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.ssim(a, a) == pytest.approx(1.0)


def test_mismatched_shapes_raise_one_line_error():
    with pytest.raises(ValueError, match=r"same shape.*\(32, 32, 3\).*\(32, 31, 3\)") as info:
        metrics.psnr(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 31, 3), np.uint8))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(np.zeros((32, 32, 3), np.uint8), np.zeros((31, 32, 3), np.uint8))


def test_non_uint8_and_too_small_images_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        metrics.psnr(np.zeros((16, 16, 3), np.float32), np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 20, 3), np.uint8))


def _to_model_range(images):
    return tf.constant(np.stack(images).astype(np.float32) / 127.5 - 1.0)


def test_tf_metrics_equal_numpy_on_a_batch():
    pairs = [_random_pair((48, 56, 3), 6), _structured_pair((48, 56)), _random_pair((48, 56, 3), 7)]
    y_true = _to_model_range([a for a, _ in pairs])
    y_pred = _to_model_range([b for _, b in pairs])
    psnr_values = metrics_tf.psnr_tf(y_true, y_pred).numpy()
    ssim_values = metrics_tf.ssim_tf(y_true, y_pred).numpy()
    assert psnr_values.shape == (3,) and psnr_values.dtype == np.float32
    assert ssim_values.shape == (3,) and ssim_values.dtype == np.float32
    for (a, b), p, s in zip(pairs, psnr_values, ssim_values, strict=True):
        assert p == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-3)
        assert s == pytest.approx(_skimage_ssim(a, b), abs=1e-3)


def test_tf_metrics_quantise_like_the_saved_uint8_image():
    # Off-level floats must score as the uint8 image from_model_range would save.
    a, b = _structured_pair((45, 71))
    rng = np.random.default_rng(8)
    jitter = rng.uniform(-0.45, 0.45, size=b.shape).astype(np.float32) / 127.5
    y_true = _to_model_range([a])
    y_pred = _to_model_range([b]) + jitter[None]
    assert float(metrics_tf.ssim_tf(y_true, y_pred)[0]) == pytest.approx(
        _skimage_ssim(a, b), abs=1e-3
    )
    assert float(metrics_tf.psnr_tf(y_true, y_pred)[0]) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=255), abs=1e-3
    )


def test_tf_metrics_run_in_a_graph_with_unknown_spatial_size():
    spec = tf.TensorSpec((None, None, None, 3), tf.float32)

    @tf.function(input_signature=[spec, spec])
    def both(y_true, y_pred):
        return metrics_tf.psnr_tf(y_true, y_pred), metrics_tf.ssim_tf(y_true, y_pred)

    a, b = _random_pair((33, 40, 3), 9)
    psnr_value, ssim_value = both(_to_model_range([a]), _to_model_range([b]))
    assert float(psnr_value[0]) == pytest.approx(metrics.psnr(a, b), abs=1e-3)
    assert float(ssim_value[0]) == pytest.approx(metrics.ssim(a, b), abs=1e-3)


def test_ssim_tf_stays_accurate_under_xla_on_larger_images():
    # A single float32 mean over ~600k values drifts by ~7e-4 under XLA; guard the fix.
    a, b = _random_pair((384, 512, 3), 10, amplitude=20)
    compiled = tf.function(metrics_tf.ssim_tf, jit_compile=True)
    value = float(compiled(_to_model_range([a]), _to_model_range([b]))[0])
    assert value == pytest.approx(_skimage_ssim(a, b), abs=1e-4)


def test_finite_mean_leaves_out_identical_images_and_json_safe_writes_null():
    from keras_deblur.metrics import finite_mean, json_safe

    assert finite_mean([30.0, float("inf"), 32.0]) == 31.0
    assert np.isnan(finite_mean([float("inf")]))
    report = {"psnr": float("inf"), "rows": [1.5, float("nan"), np.float32("inf")], "n": 2}
    assert json_safe(report) == {"psnr": None, "rows": [1.5, None, None], "n": 2}
