"""Training in mixed bfloat16 reaches float32's validation at the same number of steps."""

import keras
import numpy as np
import tensorflow as tf

from keras_deblur.data.embedded import embedded_photo_paths
from keras_deblur.data.images import read_image, to_rgb_uint8
from keras_deblur.data.motion_blur import blur_image
from keras_deblur.gan import DeblurGAN
from keras_deblur.inference import to_model_range
from keras_deblur.models import build_critic, build_mobile_generator

CROP = 32
STEPS = 150
BATCH = 8
LEARNING_RATE = 2e-3
# Validation gains (dB) measured on a 2-core AVX512-BF16 CPU: float32 at seeds
# 0, 1, 2: 7.49, 8.18, 8.51 (a 1.0 dB range); mixed bf16 at the same seeds:
# 8.12, 7.98, 8.89, paired differences of +0.63, -0.19, +0.38 dB. So the
# tolerance is float32's own seed-to-seed range. Pure bf16 (bf16 weights, no
# float32 master copy, so Adam's updates round away) stays at 0.0 dB, and a
# run that diverged would score far below.
TOLERANCE_DB = 1.0


def _pairs(count, seed):
    """`count` (degraded, sharp) 32x32 crops of the embedded photos.

    Degraded: a faded copy (contrast 0.7 around mid-grey), slightly blurred,
    which a small network learns to undo in a few hundred steps.
    """
    rng = np.random.default_rng(seed)
    photos = [to_rgb_uint8(read_image(path)) for path in embedded_photo_paths("train")[:4]]
    kernel = np.full((3, 3), 1 / 9, np.float32)
    degraded, sharp = [], []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - CROP - 2) + 1
        left = rng.integers(photo.shape[1] - CROP - 2) + 1
        region = photo[top - 1 : top + CROP + 1, left - 1 : left + CROP + 1]
        faded = 0.7 * blur_image(region, kernel) + 0.3 * 127.5
        degraded.append(np.rint(faded[1:-1, 1:-1]).astype(np.uint8))
        sharp.append(region[1:-1, 1:-1])
    return to_model_range(np.stack(degraded)), to_model_range(np.stack(sharp))


def _gain_db(generator, blurred, sharp):
    """Mean PSNR gain over the blurred input, in dB, computed in float32."""

    def psnr(a, b):
        mse = np.mean((np.asarray(a, np.float64) - b) ** 2, axis=(1, 2, 3))
        return 10 * np.log10(4.0 / mse)  # range [-1, 1]: peak-to-peak 2

    output = np.asarray(generator(blurred, training=False), np.float32)
    return float(np.mean(psnr(output, sharp) - psnr(blurred, sharp)))


def train_and_validate(policy, seed, steps=STEPS):
    """Trains a small mobile generator `steps` steps (log-MSE, Adam) under `policy`.

    Same seed, same initial weights and batches whatever the policy.
    Returns the validation gain in dB.
    """
    train_pairs, val_pairs = _pairs(steps * BATCH, seed=100), _pairs(64, seed=200)
    previous = keras.config.dtype_policy()
    keras.utils.set_random_seed(seed)
    keras.config.set_dtype_policy(policy)
    try:
        generator = build_mobile_generator(num_filters=16, num_res_blocks=2)
        gan = DeblurGAN(generator, build_critic(num_filters=8, num_layers=1), None)
        gan.compile(
            g_optimizer=keras.optimizers.Adam(LEARNING_RATE),
            d_optimizer=keras.optimizers.Adam(LEARNING_RATE),
            adversarial_weight=0.0,
            content_weight=0.0,
            pixel_weight=1.0,
            pixel_loss="log_mse",
        )
        data = tf.data.Dataset.from_tensor_slices(train_pairs).batch(BATCH)
        gan.fit(data, epochs=1, verbose=0, shuffle=False)
        return _gain_db(generator, *val_pairs)
    finally:
        keras.config.set_dtype_policy(previous)


def test_mixed_bfloat16_training_reaches_float32_validation():
    float32 = train_and_validate("float32", seed=0)
    bfloat16 = train_and_validate("mixed_bfloat16", seed=0)
    assert float32 > 4 * TOLERANCE_DB  # it learned: the comparison means something
    assert abs(bfloat16 - float32) <= TOLERANCE_DB, (float32, bfloat16)
