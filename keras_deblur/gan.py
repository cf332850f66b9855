"""DeblurGAN as a `keras.Model`: the WGAN-GP training step of Kupyn et al. (2018)."""

import functools

import keras
import tensorflow as tf
from keras import ops

from keras_deblur import losses
from keras_deblur.metrics_tf import psnr_tf, ssim_tf
from keras_deblur.multi_worker import is_multi_worker

TEST_METRICS = ("psnr", "ssim", "input_psnr")


class DeblurGAN(keras.Model):
    """A generator and a critic trained together with WGAN-GP + perceptual loss.

    One `train_step` (one batch) does what one iteration of the reference
    code does: the generator deblurs the batch once; then `critic_steps`
    critic updates, each with a fresh tape, on the sharp images and the
    (fixed) generated ones, with the Wasserstein loss plus `gp_weight` times
    the gradient penalty; then one generator update with
    `-mean(critic(fake)) + content_weight * perceptual(sharp, fake)`,
    scored by the updated critic.

    Losses are summed over the batch and divided by the global batch size
    (all replicas), so gradients summed across replicas by `tf.distribute`
    equal those of one big batch.

    Args:
        generator: `keras.Model`. Blurred `(batch, H, W, 3)` in [-1, 1] ->
            deblurred, same shape and range (`build_generator`).
        critic: `keras.Model`. Images `(batch, H, W, 3)` in [-1, 1] -> patch
            scores `(batch, h, w, 1)` (`build_critic`).
        perceptual_loss: callable `(sharp, fake) -> (batch,)` float32, e.g.
            `keras_deblur.losses.build_perceptual_loss()`, or None when
            compiled with `content_weight=0`.

    Example:
    >>> gan = DeblurGAN(build_generator(), build_critic(), build_perceptual_loss())
    >>> gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
    ...             d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5))
    >>> gan.fit(train_ds.batch(1), validation_data=val_ds.batch(1), epochs=300)
    """

    def __init__(self, generator, critic, perceptual_loss, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.critic = critic
        self.perceptual_loss = perceptual_loss
        self.seed_generator = keras.random.SeedGenerator(seed=0)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.gradient_penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.perceptual_loss_tracker = keras.metrics.Mean(name="perceptual_loss")
        self.pixel_loss_tracker = keras.metrics.Mean(name="pixel_loss")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein_distance")
        self.train_psnr_tracker = keras.metrics.Mean(name="psnr")
        # PSNR of the blurred input: the figure the generator has to beat.
        self.train_input_psnr_tracker = keras.metrics.Mean(name="input_psnr")
        self.input_psnr_tracker = keras.metrics.Mean(name="input_psnr")
        self.psnr_tracker = keras.metrics.Mean(name="psnr")
        self.ssim_tracker = keras.metrics.Mean(name="ssim")

    def compile(
        self,
        g_optimizer,
        d_optimizer,
        gp_weight=10.0,
        content_weight=100.0,
        critic_steps=5,
        adversarial_weight=1.0,
        pixel_weight=0.0,
        pixel_loss="mse",
        log_mse_floor=losses.LOG_MSE_FLOOR,
        harm_weight=0.0,
        **kwargs,
    ):
        """Configures training.

        Args:
            g_optimizer: `keras.optimizers.Optimizer` for the generator.
            d_optimizer: `keras.optimizers.Optimizer` for the critic; it steps
                `critic_steps` times per batch.
            gp_weight: float. Gradient penalty weight (lambda). Defaults to 10.
            content_weight: float. Perceptual loss weight. Defaults to 100.
            critic_steps: int. Critic updates per generator update. Defaults to 5.
            adversarial_weight: float. Weight of `-D(fake)` in the generator
                loss; 0 skips the critic entirely (a content-only warm-up,
                see `set_adversarial_weight`). Defaults to 1 (the paper).
            pixel_weight: float. Weight of a pixel MSE loss added to the
                generator loss. Defaults to 0 (the paper has none).
            pixel_loss: str. The pixel term, a key of `losses.PIXEL_LOSSES`:
                "mse", or "log_mse" (each sample's error in dB, so that the
                most blurred crops do not dominate). Defaults to "mse".
            log_mse_floor: float > 0. Added to each sample's MSE by "log_mse".
                Defaults to `losses.LOG_MSE_FLOOR` (1e-4).
            harm_weight: float. Weight of `losses.harm_loss`, the dB each sample's
                output lost against its input. Defaults to 0.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`).
                Under the "mixed_float16" policy both optimizers are wrapped
                in `keras.optimizers.LossScaleOptimizer`.
        """
        if int(critic_steps) < 1:
            raise ValueError(f"critic_steps must be >= 1. Received: critic_steps={critic_steps}")
        weights = dict(
            gp_weight=gp_weight,
            content_weight=content_weight,
            adversarial_weight=adversarial_weight,
            pixel_weight=pixel_weight,
            harm_weight=harm_weight,
        )
        negative = {name: value for name, value in weights.items() if value < 0}
        if negative:
            raise ValueError(f"Loss weights must be >= 0. Received: {negative}")
        if pixel_loss not in losses.PIXEL_LOSSES:
            raise ValueError(
                f"pixel_loss must be one of {sorted(losses.PIXEL_LOSSES)}. "
                f"Received: pixel_loss={pixel_loss!r}"
            )
        if content_weight > 0 and self.perceptual_loss is None:
            raise ValueError("content_weight > 0 needs a perceptual_loss; pass one or set it to 0")
        # No optimizer of its own: the two below do all the updates.
        super().compile(optimizer=None, **kwargs)
        if keras.config.dtype_policy().name == "mixed_float16":
            g_optimizer = _with_loss_scaling(g_optimizer)
            d_optimizer = _with_loss_scaling(d_optimizer)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.gp_weight = float(gp_weight)
        self.content_weight = float(content_weight)
        self.critic_steps = int(critic_steps)
        self.adversarial_weight = float(adversarial_weight)
        self.pixel_weight = float(pixel_weight)
        self.harm_weight = float(harm_weight)
        self.pixel_loss = losses.PIXEL_LOSSES[pixel_loss]
        if pixel_loss == "log_mse":
            self.pixel_loss = functools.partial(losses.log_mse_loss, floor=float(log_mse_floor))
        # Optimizer variables must exist before the first step: created lazily
        # inside a replica context they break tf.distribute, and a checkpoint
        # restore needs them to fill.
        self.build_optimizers()

    def build_optimizers(self):
        """Creates both optimizers' variables (done by `compile`; call under the strategy scope)."""
        if not self.g_optimizer.built:
            self.g_optimizer.build(self.generator.trainable_variables)
        if not self.d_optimizer.built:
            self.d_optimizer.build(self.critic.trainable_variables)

    def set_adversarial_weight(self, weight):
        """Changes the adversarial weight between two `fit` calls (e.g. after a warm-up).

        The training function is rebuilt on the next `fit`, since a weight of 0
        removes the critic from the step.
        """
        if weight < 0:
            raise ValueError(f"adversarial_weight must be >= 0. Received: {weight}")
        self.adversarial_weight = float(weight)
        self.train_function = None

    def _train_trackers(self):
        """The trackers `train_step` reports, in log order."""
        return (
            self.critic_loss_tracker,
            self.generator_loss_tracker,
            self.gradient_penalty_tracker,
            self.perceptual_loss_tracker,
            self.pixel_loss_tracker,
            self.wasserstein_tracker,
            self.train_psnr_tracker,
            self.train_input_psnr_tracker,
        )

    @property
    def metrics(self):
        return [
            *self._train_trackers(),
            self.psnr_tracker,
            self.ssim_tracker,
            self.input_psnr_tracker,
        ]

    def build(self, input_shape=None):
        # The injected networks arrive built; nothing else holds weights.
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15) builds a model in `fit` from a first batch that it
        # all-reduces with `strategy.reduce`, which cannot reduce a (blurred,
        # sharp) pair under MultiWorkerMirroredStrategy (keras-team/keras#20585).
        # Nothing here needs that batch: the networks arrive built, and the
        # trackers and optimizers are built by __init__ and compile.
        self.build()

    def call(self, blurred, training=False):
        return self.generator(blurred, training=training)

    def gradient_penalty(self, sharp, fake):
        """Per-sample WGAN-GP penalty `(batch,)` at random interpolates.

        One alpha ~ U[0, 1] per sample; the gradient norm runs over all pixels
        and channels of the sample (see `keras_deblur.losses.gradient_penalty`).
        """
        alpha = keras.random.uniform(
            (ops.shape(sharp)[0], 1, 1, 1), 0.0, 1.0, seed=self.seed_generator
        )
        return losses.gradient_penalty(self.critic, sharp, fake, alpha)

    def _global_batch_size(self, batch):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return ops.cast(ops.shape(batch)[0] * replicas, "float32")

    def _critic_step(self, sharp, fake, global_batch):
        with tf.GradientTape() as tape:
            real_scores = self.critic(sharp, training=True)
            fake_scores = self.critic(fake, training=True)
            wasserstein = losses.critic_wasserstein_loss(real_scores, fake_scores)
            penalty = self.gradient_penalty(sharp, fake)
            per_sample = wasserstein + self.gp_weight * penalty
            loss = ops.sum(per_sample) / global_batch
            scaled = _scale_loss(self.d_optimizer, loss)
        gradients = tape.gradient(scaled, self.critic.trainable_variables)
        self.d_optimizer.apply_gradients(
            zip(gradients, self.critic.trainable_variables, strict=True)
        )
        return ops.mean(per_sample), ops.mean(penalty), -ops.mean(wasserstein)

    def _critic_steps(self, sharp, fake, global_batch):
        """`critic_steps` calls of `_critic_step`; returns the last one's values.

        A graph loop rather than a Python one where it can be: the step is
        traced with one copy of the critic's double backward instead of five
        (13.4 -> 7.2 s of tracing on 2 CPU cores). The loop stays in Python
        under a `tf.distribute` strategy, since the gradients' all-reduce (a
        merge_call) cannot sit in a graph loop, and under XLA, where the
        looped step had not finished its first call after 8 minutes (unrolled:
        47 s).
        """
        if tf.distribute.has_strategy() or self.jit_compile:
            for _ in range(self.critic_steps):
                values = self._critic_step(sharp, fake, global_batch)
            return values

        def one_step(step, *unused):
            return (step + 1, *self._critic_step(sharp, fake, global_batch))

        zero = ops.zeros((), "float32")
        _, critic_loss, penalty, wasserstein = tf.while_loop(
            lambda step, *unused: step < self.critic_steps,
            one_step,
            (ops.zeros((), "int32"), zero, zero, zero),
            # Each step reads the weights the previous one wrote.
            parallel_iterations=1,
        )
        return critic_loss, penalty, wasserstein

    def train_step(self, data):
        blurred, sharp = data
        global_batch = self._global_batch_size(blurred)
        adversarial_on = self.adversarial_weight > 0
        with tf.GradientTape() as g_tape:
            fake = self.generator(blurred, training=True)
            if adversarial_on:
                # The critic steps see a fixed fake batch (as the reference's
                # `fake_B.detach()`); keeping them off the generator's tape saves memory.
                with g_tape.stop_recording():
                    critic_loss, penalty, wasserstein = self._critic_steps(
                        sharp, ops.stop_gradient(fake), global_batch
                    )
                fake_scores = self.critic(fake, training=True)
                adversarial = losses.generator_adversarial_loss(fake_scores)
            else:
                adversarial = ops.zeros((ops.shape(fake)[0],), "float32")
            perceptual = _weighted_term(self.content_weight, self.perceptual_loss, sharp, fake)
            pixel = _weighted_term(self.pixel_weight, self.pixel_loss, sharp, fake)
            harm = _weighted_term(
                self.harm_weight, lambda s, f: losses.harm_loss(s, f, blurred), sharp, fake
            )
            per_sample = (
                self.adversarial_weight * adversarial
                + self.content_weight * perceptual
                + self.pixel_weight * pixel
                + self.harm_weight * harm
            )
            g_loss = ops.sum(per_sample) / global_batch
            scaled = _scale_loss(self.g_optimizer, g_loss)
        gradients = g_tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(
            zip(gradients, self.generator.trainable_variables, strict=True)
        )

        if adversarial_on:
            self.critic_loss_tracker.update_state(critic_loss)
            self.gradient_penalty_tracker.update_state(penalty)
            self.wasserstein_tracker.update_state(wasserstein)
        self.generator_loss_tracker.update_state(ops.mean(per_sample))
        self.perceptual_loss_tracker.update_state(ops.mean(perceptual))
        self.pixel_loss_tracker.update_state(ops.mean(pixel))
        _update_psnr_pair(
            self.train_psnr_tracker,
            self.train_input_psnr_tracker,
            psnr_tf(sharp, fake),
            psnr_tf(sharp, blurred),
        )
        return _reducible_logs({m.name: m.result() for m in self._train_trackers()})

    def test_step(self, data):
        """One validation batch; the logs are `TEST_METRICS` (fit prefixes them with "val_")."""
        blurred, sharp = data
        deblurred = self.generator(blurred, training=False)
        _update_psnr_pair(
            self.psnr_tracker,
            self.input_psnr_tracker,
            psnr_tf(sharp, deblurred),
            psnr_tf(sharp, blurred),
        )
        self.ssim_tracker.update_state(ssim_tf(sharp, deblurred))
        trackers = (self.psnr_tracker, self.ssim_tracker, self.input_psnr_tracker)
        return _reducible_logs(
            {name: t.result() for name, t in zip(TEST_METRICS, trackers, strict=True)}
        )


def _reducible_logs(logs):
    """The step's logs in the shape Keras can average over the replicas of every worker.

    Keras (3.15) averages a step's logs across MultiWorkerMirroredStrategy
    workers along axis 0, which scalars lack (keras-team/keras#20585): there
    each log goes as a one-element vector, and every worker gets the mean over
    all replicas (one value on all workers, so all take the same decisions:
    stopping on NaN, the best generator). Elsewhere the logs stay scalars.
    """
    if not is_multi_worker(tf.distribute.get_strategy()):
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def _weighted_term(weight, loss_fn, sharp, fake):
    """`loss_fn(sharp, fake)` per sample, or zeros when its weight is 0 (no VGG pass)."""
    if weight == 0:
        return ops.zeros((ops.shape(fake)[0],), "float32")
    return loss_fn(sharp, fake)


def _update_psnr_pair(output_tracker, input_tracker, output_psnr, input_psnr):
    """Adds the PSNRs of the samples where both are finite to their means.

    An unblurred pair has an infinite input PSNR and is left out of both means,
    as in reports; leaving it out of the input mean only would average the output
    over more (and easier) samples and show a gain that is not there.
    """
    finite = ops.cast(ops.isfinite(output_psnr) & ops.isfinite(input_psnr), "float32")
    for tracker, values in ((output_tracker, output_psnr), (input_tracker, input_psnr)):
        tracker.update_state(ops.where(finite > 0, values, 0.0), sample_weight=finite)


def _with_loss_scaling(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def _scale_loss(optimizer, loss):
    """Multiplies by the dynamic loss scale under mixed_float16; `apply_gradients` undoes it."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss
