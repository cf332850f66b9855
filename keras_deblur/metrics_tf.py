"""PSNR and SSIM in TensorFlow, graph-compatible, for validation inside `test_step`.

The definitions of `keras_deblur.metrics` (scikit-image's), on batches of
model-range float images `[-1, 1]` quantised to the 256 uint8 levels first, so
they agree with the numpy versions on the saved uint8 images to within 1e-3.
"""

import tensorflow as tf

from keras_deblur.metrics import (
    DATA_RANGE,
    SSIM_CENTRE,
    SSIM_WINDOW,
    gaussian_window_1d,
    ssim_from_moments,
)


def _to_levels(images):
    """[-1, 1] floats -> float32 uint8 levels 0..255, as `from_model_range` saves them."""
    images = tf.convert_to_tensor(images)
    images = tf.cast(images, tf.float32)
    return tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0)


def _valid_gaussian_tf(images):
    """Separable 'valid' Gaussian filter of a (batch, H, W, C) tensor by shifted sums.

    Multiply-adds rather than a convolution on purpose: GPUs run float32
    convolutions in TF32 by default, whose 10-bit mantissa would put errors of
    several units into E[x^2] (values up to 128^2) and so into the variances.
    """
    taps = gaussian_window_1d().tolist()
    margin = len(taps) - 1
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = tf.add_n([w * images[:, k : height - margin + k] for k, w in enumerate(taps)])
    return tf.add_n([w * rows[:, :, k : width - margin + k] for k, w in enumerate(taps)])


def _staged_mean(values):
    """Mean over (H, W, C) of a (batch, H, W, C) tensor, one axis at a time.

    Under XLA a single float32 mean over millions of elements accumulates
    sequentially (0.007 SSIM error measured on a 1280x720 frame, XLA on CPU); short
    reductions do not.
    """
    return tf.reduce_mean(tf.reduce_mean(tf.reduce_mean(values, axis=2), axis=1), axis=1)


def psnr_tf(y_true, y_pred):
    """Per-image PSNR in dB of model-range batches, quantised to uint8 levels first.

    Args:
        y_true: float tensor `(batch, H, W, C)` in `[-1, 1]`. Reference (sharp) images.
        y_pred: float tensor of the same shape in `[-1, 1]`. Restored images.

    Returns:
        float32 tensor `(batch,)`; `inf` where an image pair is identical after
        quantisation. Graph-compatible.
    """
    x = _to_levels(y_true)
    y = _to_levels(y_pred)
    mse = _staged_mean(tf.square(x - y))
    return 10.0 * (tf.math.log(DATA_RANGE**2 / mse) / tf.math.log(10.0))


def ssim_tf(y_true, y_pred):
    """Per-image SSIM of model-range batches, the same definition as `ssim`.

    Args:
        y_true: float tensor `(batch, H, W, C)` in `[-1, 1]`, H and W at least 11.
        y_pred: float tensor of the same shape in `[-1, 1]`.

    Returns:
        float32 tensor `(batch,)`: mean SSIM over the valid region and channels of
        each image, within 1e-3 of `ssim` on the uint8-quantised images.
        Graph-compatible (works inside `tf.function` and `test_step`).
    """
    x = _to_levels(y_true) - SSIM_CENTRE
    y = _to_levels(y_pred) - SSIM_CENTRE
    height, width = x.shape[1], x.shape[2]
    if (height is not None and height < SSIM_WINDOW) or (width is not None and width < SSIM_WINDOW):
        raise ValueError(
            f"SSIM needs images at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels. "
            f"Received: shape={tuple(x.shape)}"
        )
    channels = x.shape[-1]
    if channels is None:
        raise ValueError("ssim_tf needs a known number of channels (last axis)")
    stack = _valid_gaussian_tf(tf.concat([x, y, x * x, y * y, x * y], axis=-1))
    ssim_map = ssim_from_moments(*tf.split(stack, 5, axis=-1))
    # Mean over the valid region per channel, then over channels: equal weights, so one mean.
    return _staged_mean(ssim_map)
