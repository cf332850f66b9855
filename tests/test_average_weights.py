"""Averaging generators: the mean of the weights, one design only, one-line errors."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_deblur.models.averaging import average_generators
from keras_deblur.models.mobile_generator import build_mobile_generator


def _generator(seed, num_res_blocks=1):
    keras.utils.set_random_seed(seed)
    generator = build_mobile_generator(num_filters=8, num_res_blocks=num_res_blocks)
    # Random weights everywhere (the zero-initialised convs too), so a wrong mean shows.
    rng = np.random.default_rng(seed)
    generator.set_weights([rng.normal(size=w.shape).astype("float32") for w in generator.weights])
    return generator


def test_the_average_is_the_element_wise_mean_of_the_weights():
    generators = [_generator(seed) for seed in (1, 2, 3)]
    mean = average_generators(generators)
    for index, tensor in enumerate(mean):
        expected = sum(g.get_weights()[index] for g in generators) / 3
        np.testing.assert_allclose(tensor, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(mean[0], generators[0].get_weights()[0])


def test_generators_of_other_designs_are_refused_naming_the_file():
    with pytest.raises(ValueError, match=r"^b\.keras: weights do not match a\.keras's"):
        average_generators([_generator(1), _generator(2, num_res_blocks=2)], ["a.keras", "b.keras"])
    with pytest.raises(ValueError, match="at least one"):
        average_generators([])


def test_the_cli_writes_a_generator_that_computes_with_the_mean_weights(tmp_path):
    paths = []
    for seed in (1, 2):
        paths.append(str(tmp_path / f"g{seed}.keras"))
        _generator(seed).save(paths[-1])
    output = tmp_path / "soup.keras"
    command = [sys.executable, "-m", "keras_deblur.average_weights"]
    result = subprocess.run(
        [*command, f"--weights={','.join(paths)}", f"--output={output}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    soup = keras.saving.load_model(output, safe_mode=True)
    expected = average_generators([keras.saving.load_model(p, safe_mode=True) for p in paths])
    for got, want in zip(soup.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    missing = subprocess.run(
        [*command, f"--weights={paths[0]},{tmp_path / 'none.keras'}", f"--output={output}"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'none.keras'}: no such file"
    )
