"""DeblurGAN's losses: Wasserstein terms, gradient penalty, VGG19 perceptual loss.

Every function returns one value per sample, shape `(batch,)`, so that the
caller decides how to reduce: `DeblurGAN.train_step` sums and divides by the
global batch size, which is what `tf.distribute` needs.
"""

import logging

import keras
import tensorflow as tf
from keras import ops

logger = logging.getLogger(__name__)

# Mean BGR pixel of ImageNet, subtracted by `keras.applications.vgg19.preprocess_input`.
VGG_BGR_MEAN = (103.939, 116.779, 123.68)
# VGG19 layers up to conv3_3 (the paper's "conv3.3" feature map).
_VGG_LAYERS = (
    "block1_conv1",
    "block1_conv2",
    "block1_pool",
    "block2_conv1",
    "block2_conv2",
    "block2_pool",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
)
_FEATURE_LAYER = "block3_conv3"


def _per_sample_mean(x):
    """Mean over every axis but the first, in float32: `(batch, ...)` -> `(batch,)`."""
    x = ops.cast(x, "float32")
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)


def critic_wasserstein_loss(real_scores, fake_scores):
    """Critic loss `D(fake) - D(real)`, averaged over each sample's patch scores.

    Args:
        real_scores: tensor `(batch, h, w, 1)`. Critic scores of sharp images.
        fake_scores: tensor `(batch, h, w, 1)`. Critic scores of generated images.

    Returns:
        float32 tensor `(batch,)`. Minimising it widens the gap between real
        and fake scores; its negative is the Wasserstein distance estimate.
    """
    return _per_sample_mean(fake_scores) - _per_sample_mean(real_scores)


def generator_adversarial_loss(fake_scores):
    """Generator loss `-D(fake)`, averaged over each sample's patch scores.

    Args:
        fake_scores: tensor `(batch, h, w, 1)`. Critic scores of generated images.

    Returns:
        float32 tensor `(batch,)`.
    """
    return -_per_sample_mean(fake_scores)


def pixel_mse_loss(sharp, fake):
    """Mean squared pixel difference per sample.

    Not in the paper: an optional term of the generator loss
    (`DeblurGAN.compile(pixel_weight=...)`) for when the perceptual loss has
    no ImageNet VGG19 weights. Squared rather than absolute error: it is what
    PSNR measures, and an L1 loss kept the identity-initialised mobile
    generator at exactly the identity for 800 steps (L1 predicts the median
    residual, which is 0 over the flat parts of a photo).

    Args:
        sharp: tensor `(batch, H, W, 3)` in [-1, 1].
        fake: tensor `(batch, H, W, 3)` in [-1, 1].

    Returns:
        float32 tensor `(batch,)`.
    """
    return _per_sample_mean(ops.square(ops.cast(fake, "float32") - ops.cast(sharp, "float32")))


# Added to each sample's MSE before the log: 1e-4 in [-1, 1] units is 46 dB PSNR.
LOG_MSE_FLOOR = 1e-4


def log_mse_loss(sharp, fake, floor=LOG_MSE_FLOOR):
    """`10 log10(MSE + floor)` per sample: minus the PSNR in dB, up to a constant.

    A plain mean of MSEs is dominated by the most blurred crops, where little
    can be recovered, and a generator trained on it settles for a mild average
    sharpening that damages nearly sharp photos. In dB every crop counts the
    same (the "PSNR loss" of NAFNet); the floor keeps exactly unblurred crops
    (MSE 0, log -inf) from dominating, while their gradient, 1 / (MSE + floor),
    still guards them more strongly than any blurred crop.

    Args:
        sharp: tensor `(batch, H, W, 3)` in [-1, 1].
        fake: tensor `(batch, H, W, 3)` in [-1, 1].
        floor: float > 0. Added to each MSE. Defaults to `LOG_MSE_FLOOR`.

    Returns:
        float32 tensor `(batch,)`, in dB (negative for errors below 1).
    """
    mse = pixel_mse_loss(sharp, fake)
    return (10.0 / 2.302585092994046) * ops.log(mse + floor)


PIXEL_LOSSES = {"mse": pixel_mse_loss, "log_mse": log_mse_loss}

# Floor of the harm term's MSEs: 1e-5 in [-1, 1] units is 56 dB PSNR, so damage
# to an unblurred crop costs from well above the 45 dB a sharp photo must keep.
HARM_FLOOR = 1e-5


def harm_loss(sharp, fake, blurred, floor=HARM_FLOOR):
    """The dB a sample's output has lost against its own input: `max(0, PSNR_in - PSNR_out)`.

    Zero wherever the generator does no harm, whatever its gain; a crop left
    nearly sharp (the input at 45-70 dB, as an unblurred photo or its defocused
    background) pays in plain dB on its own PSNR for any damage, which the
    log-MSE term with its floor lets pass almost free.

    Args:
        sharp: tensor `(batch, H, W, 3)` in [-1, 1].
        fake: tensor `(batch, H, W, 3)` in [-1, 1]: the generator's output.
        blurred: tensor `(batch, H, W, 3)` in [-1, 1]: its input.
        floor: float > 0. Added to both MSEs. Defaults to `HARM_FLOOR`.

    Returns:
        float32 tensor `(batch,)`, in dB, >= 0.
    """
    output_error = pixel_mse_loss(sharp, fake) + floor
    input_error = pixel_mse_loss(sharp, blurred) + floor
    return ops.relu((10.0 / 2.302585092994046) * ops.log(output_error / input_error))


def gradient_penalty(critic, real, fake, alpha, epsilon=1e-12):
    """WGAN-GP penalty `(||grad_x D(x)|| - 1)^2` at interpolates of real and fake.

    Gulrajani et al. (2017). `x = real + alpha * (fake - real)` with one alpha
    per sample; the norm runs over all pixels and channels of each sample
    (the critic's summed patch scores are differentiated, so each sample's
    gradient only involves its own scores). `epsilon` inside the square root
    keeps the gradient of the norm finite where the gradient is zero.

    Args:
        critic: callable. Maps images `(batch, H, W, 3)` to scores.
        real: tensor `(batch, H, W, 3)` in [-1, 1]. Sharp images.
        fake: tensor `(batch, H, W, 3)` in [-1, 1]. Generated images.
        alpha: tensor `(batch, 1, 1, 1)` in [0, 1]. Interpolation weights.
        epsilon: float. Added to the squared norm. Defaults to 1e-12.

    Returns:
        float32 tensor `(batch,)`.
    """
    real = ops.cast(real, "float32")
    fake = ops.cast(fake, "float32")
    interpolates = real + ops.cast(alpha, "float32") * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates, training=True)
        # Summing keeps the samples independent: d(sum)/dx_i = dD(x_i)/dx_i.
        total = ops.sum(ops.cast(scores, "float32"))
    gradients = ops.cast(tape.gradient(total, interpolates), "float32")
    squared_norm = ops.sum(ops.reshape(ops.square(gradients), (ops.shape(gradients)[0], -1)), 1)
    return ops.square(ops.sqrt(squared_norm + epsilon) - 1.0)


def vgg19_preprocess(images):
    """DeblurGAN images in [-1, 1] RGB -> the input the Keras VGG19 weights expect.

    Same as `keras.applications.vgg19.preprocess_input` ("caffe" mode) on
    images in [0, 255]: RGB -> BGR, then the ImageNet mean pixel subtracted.

    Args:
        images: tensor `(batch, H, W, 3)` in [-1, 1], RGB.

    Returns:
        float32 tensor `(batch, H, W, 3)`, BGR, mean-subtracted, roughly [-124, 152].
    """
    pixels = (ops.cast(images, "float32") + 1.0) * 127.5
    bgr = ops.flip(pixels, axis=-1)
    return bgr - ops.convert_to_tensor(VGG_BGR_MEAN, "float32")


def _load_vgg19(weights):
    """VGG19 without its classifier, from `"imagenet"`, a local file or `None`."""
    if weights is None:
        logger.warning(
            "!!! PERCEPTUAL LOSS WITH RANDOM VGG19 WEIGHTS (weights=None): the content "
            "loss compares random features. Use this for tests only; pass "
            "weights='imagenet' or the path of "
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 for real training. !!!"
        )
    elif weights != "imagenet":
        weights = str(weights)
        if not tf.io.gfile.exists(weights):
            raise FileNotFoundError(f"{weights}: VGG19 weights file not found")
    return keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))


@keras.saving.register_keras_serializable(package="keras_deblur")
class PerceptualLoss(keras.layers.Layer):
    """Perceptual (content) loss of DeblurGAN: MSE of VGG19 conv3_3 features.

    The features are those of VGG19's `block3_conv3` *before* its ReLU, as in
    the paper and its reference code (Keras' `block3_conv3` output includes
    the ReLU, so this layer re-creates that conv with a linear activation and
    the same weights). Inputs are converted to what the Keras ImageNet
    weights expect (`vgg19_preprocess`). The layer is frozen: its weights
    never train, and gradients flow through it to the generator only.

    Args:
        weights: `"imagenet"`, a path to Keras' no-top VGG19 `.h5` weights, or
            None (random features, for tests only: logs a loud warning).
            Defaults to `"imagenet"` (downloads on first use).

    Call arguments:
        y_true: tensor `(batch, H, W, 3)` in [-1, 1]. Sharp images.
        y_pred: tensor `(batch, H, W, 3)` in [-1, 1]. Generated images.

    Returns:
        float32 tensor `(batch,)`: the mean squared feature difference per sample.

    Example:
    >>> loss = PerceptualLoss(weights=None)
    >>> loss(np.zeros((2, 32, 32, 3), "float32"), np.ones((2, 32, 32, 3), "float32")).shape
    TensorShape([2])
    """

    def __init__(self, weights="imagenet", **kwargs):
        super().__init__(**kwargs)
        self.weights_source = weights
        vgg = _load_vgg19(weights)
        self.extractor = self._truncated_copy(vgg)
        self.extractor.trainable = False
        self.trainable = False

    @staticmethod
    def _truncated_copy(vgg):
        """A VGG19 trunk up to conv3_3 with a linear last conv, sharing no state with `vgg`."""
        inputs = keras.Input((None, None, 3), name="vgg_input")
        x = inputs
        for name in _VGG_LAYERS:
            source = vgg.get_layer(name)
            config = source.get_config()
            if name == _FEATURE_LAYER:
                config["activation"] = "linear"
            layer = source.__class__.from_config(config)
            x = layer(x)
            layer.set_weights(source.get_weights())
        return keras.Model(inputs, x, name="vgg19_conv3_3")

    def features(self, images):
        """conv3_3 pre-activation features `(batch, H/4, W/4, 256)` of images in [-1, 1]."""
        return self.extractor(vgg19_preprocess(images), training=False)

    def call(self, y_true, y_pred):
        difference = ops.cast(self.features(y_true), "float32") - ops.cast(
            self.features(y_pred), "float32"
        )
        return _per_sample_mean(ops.square(difference))

    def compute_output_shape(self, y_true_shape, y_pred_shape):
        return (y_true_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update({"weights": self.weights_source})
        return config


def build_perceptual_loss(weights="imagenet"):
    """Builds the frozen VGG19 conv3_3 perceptual loss; see `PerceptualLoss`."""
    return PerceptualLoss(weights=weights, name="perceptual_loss")
