"""The coverage-guided fuzz harnesses (tests/fuzz/): every kept crashing input now honours
the contract, and a short seeded run of each harness finds nothing new."""

import importlib
import os
import subprocess
import sys

import pytest

FUZZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz")
sys.path.insert(0, FUZZ)

import harness  # noqa: E402

HARNESSES = ("read_image", "load_keras", "load_tflite", "recipe", "manifest")
# Mutations per harness in the short run, after its seeds and regressions: a few
# seconds each (a Keras load takes ~40 ms, a header or JSON well under 1 ms).
SHORT_RUNS = {
    "read_image": 300,
    "load_keras": 40,
    "load_tflite": 300,
    "recipe": 500,
    "manifest": 500,
}


@pytest.mark.parametrize("name", HARNESSES)
def test_every_kept_crash_is_now_handled_within_the_contract(name):
    inputs = harness.regression_inputs(name)
    assert inputs, f"tests/fuzz/regressions/{name}/ is empty"
    module = importlib.import_module(f"fuzz_{name}")
    for file_name, data in inputs:
        try:
            module.one_input(data)
        except Exception as error:
            raise AssertionError(f"regressions/{name}/{file_name}: {error!r}") from error


def test_inputs_that_crashed_native_code_are_now_refused_in_one_line():
    """`native_crashes/<harness>/` holds inputs that once killed the process in a native
    library (LiteRT); each is replayed through its harness in a child process, so that a
    regression fails this test instead of killing the test run."""
    folder = os.path.join(FUZZ, "native_crashes")
    replay = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        "importlib.import_module('fuzz_' + sys.argv[2]).one_input(open(sys.argv[3], 'rb').read())"
    )
    for name in sorted(os.listdir(folder)):
        for file_name in sorted(os.listdir(os.path.join(folder, name))):
            path = os.path.join(folder, name, file_name)
            result = subprocess.run(
                [sys.executable, "-c", replay, FUZZ, name, path], capture_output=True, text=True
            )
            assert result.returncode == 0, (
                name,
                file_name,
                result.returncode,
                result.stderr[-2000:],
            )


def test_the_contract_check_refuses_other_types_and_multi_line_messages():
    from keras_deblur.data.images import ImageReadError

    harness.check_error(ImageReadError("x.png: corrupt"), "read_image", ("x.png",))
    for error in (ValueError("x.png: corrupt"), ImageReadError("x.png: a\nb")):
        with pytest.raises(AssertionError):
            harness.check_error(error, "read_image", ("x.png",))
    with pytest.raises(AssertionError):
        harness.check_error(ImageReadError("corrupt"), "read_image", ("x.png",))


def test_short_seeded_runs_of_every_harness_find_nothing(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    pending = list(HARNESSES)
    running, failures = [], []
    while pending or running:  # two at a time: the machine has two cores
        while pending and len(running) < 2:
            name = pending.pop(0)
            corpus = tmp_path / name
            command = [
                sys.executable,
                os.path.join(FUZZ, f"fuzz_{name}.py"),
                f"-runs={SHORT_RUNS[name]}",
                "-seed=1",
                f"-artifact_prefix={tmp_path}/{name}-",
                str(corpus),
                os.path.join(harness.REGRESSIONS, name),
            ]
            log = open(tmp_path / f"{name}.log", "w")
            running.append((name, log, subprocess.Popen(command, stdout=log, stderr=log, env=env)))
        name, log, process = running.pop(0)
        code = process.wait(timeout=600)
        log.close()
        if code != 0:
            failures.append((name, (tmp_path / f"{name}.log").read_text()[-3000:]))
    assert not failures, failures
    for name in HARNESSES:
        assert "Done " in (tmp_path / f"{name}.log").read_text(), name
