"""Tests for the constant-then-linear-decay learning rate schedule."""

import keras
import numpy as np
import pytest

from keras_deblur.schedules import ConstantThenLinearDecay


def test_constant_for_the_first_half_then_linear_to_zero():
    schedule = ConstantThenLinearDecay(1e-4, total_steps=300)
    rates = [float(schedule(step)) for step in (0, 149, 150, 225, 299, 300, 1000)]
    np.testing.assert_allclose(
        rates, [1e-4, 1e-4, 1e-4, 0.5e-4, 1e-4 / 150, 0.0, 0.0], rtol=1e-5, atol=1e-12
    )


def test_explicit_constant_phase_and_monotonic_decay():
    schedule = ConstantThenLinearDecay(2e-4, total_steps=10, constant_steps=4)
    rates = np.array([float(schedule(step)) for step in range(12)])
    np.testing.assert_allclose(rates[:5], 2e-4, rtol=1e-6)
    assert np.all(np.diff(rates[4:11]) < 0)
    assert rates[10] == 0.0 and rates[11] == 0.0


def test_drives_adam_through_its_step_counter():
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.Adam(ConstantThenLinearDecay(1e-3, total_steps=4))
    rates = []
    for _ in range(4):
        rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        optimizer.apply_gradients([(keras.ops.ones(3), variable)])
    np.testing.assert_allclose(rates, [1e-3, 1e-3, 1e-3, 0.5e-3], rtol=1e-5)


def test_serializes_inside_an_optimizer_config():
    optimizer = keras.optimizers.Adam(
        ConstantThenLinearDecay(1e-4, total_steps=100, constant_steps=30), beta_1=0.5
    )
    restored = keras.optimizers.Adam.from_config(optimizer.get_config())
    schedule = keras.optimizers.schedules.deserialize(restored.get_config()["learning_rate"])
    assert isinstance(schedule, ConstantThenLinearDecay)
    assert schedule.get_config() == {
        "initial_learning_rate": 1e-4,
        "total_steps": 100,
        "constant_steps": 30,
    }
    # The restored optimizer really uses the schedule: step 0 is in the constant phase.
    assert float(keras.ops.convert_to_numpy(restored.learning_rate)) == pytest.approx(1e-4)
    assert float(schedule(65)) == pytest.approx(0.5e-4)


@pytest.mark.parametrize("kwargs", [{"total_steps": 0}, {"total_steps": 10, "constant_steps": 11}])
def test_rejects_impossible_step_counts(kwargs):
    with pytest.raises(ValueError, match="steps"):
        ConstantThenLinearDecay(1e-4, **kwargs)
