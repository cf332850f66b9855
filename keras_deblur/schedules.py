"""DeblurGAN's learning rate schedule: constant, then a linear decay to zero."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_deblur")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Holds the learning rate for a while, then decays it linearly to zero.

    DeblurGAN trains 150 epochs at 1e-4 and then 150 epochs decaying linearly
    to 0 (Kupyn et al., 2018). The schedule is a function of the optimizer's
    own step counter, so it survives checkpoint/resume unchanged.

    Args:
        initial_learning_rate: float. Rate during the constant phase.
            Defaults to 1e-4.
        total_steps: int. Optimizer steps of the whole run; the rate reaches 0
            at this step and stays there.
        constant_steps: int or None. Steps at the initial rate. Defaults to
            None: half of `total_steps`.

    Example:
    >>> schedule = ConstantThenLinearDecay(1e-4, total_steps=100)
    >>> round(float(schedule(75)), 8)
    5e-05
    """

    def __init__(self, initial_learning_rate=1e-4, total_steps=1, constant_steps=None):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1. Received: total_steps={total_steps}")
        if constant_steps is None:
            constant_steps = total_steps // 2
        if not 0 <= constant_steps <= total_steps:
            raise ValueError(
                "constant_steps must be in [0, total_steps]. "
                f"Received: constant_steps={constant_steps}, total_steps={total_steps}"
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.constant_steps = int(constant_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay_steps = max(self.total_steps - self.constant_steps, 1)
        # Fraction of the decay phase still to go: 1 until constant_steps, 0 at total_steps.
        remaining = 1.0 - (step - self.constant_steps) / decay_steps
        return self.initial_learning_rate * ops.clip(remaining, 0.0, 1.0)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "constant_steps": self.constant_steps,
        }
