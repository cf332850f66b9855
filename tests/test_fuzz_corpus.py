"""The hostile-file corpus (`fuzz_corpus.py`) through every CLI that reads photos and the
training data readers: each bad file named in one line, no traceback, good files processed,
exit code 1, memory bounded."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from fuzz_corpus import build_corpus

from keras_deblur.data import datasets
from keras_deblur.data.images import read_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Python + TensorFlow + the generator take well under 2 GB here; decoding the
# bomb's claimed 100000x100000 pixels would take 30 GB.
PEAK_MEMORY_LIMIT_KB = 3 * 1024 * 1024
# Runs a command and prints its peak resident memory (kB) on the last line of stderr.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build_corpus(str(folder))


def _run(module, *args):
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO},
        timeout=600,
    )
    *lines, peak = result.stderr.rstrip("\n").split("\n")
    return result.returncode, "\n".join(lines), int(peak)


def _assert_each_named_once(stderr, names):
    assert "Traceback" not in stderr, stderr[-3000:]
    assert not re.search(r"^[EF]\d{4} ", stderr, re.MULTILINE), stderr[-3000:]  # native errors
    for name in names:
        lines = [line for line in stderr.splitlines() if f"/{name}:" in line]
        assert len(lines) == 1, (name, lines)


def _cases(cases, *kinds):
    return sorted(name for name, kind in cases.items() if kind in kinds)


def test_read_image_reads_the_good_files_upright_and_refuses_the_bad_in_one_line(corpus):
    folder, cases = corpus
    for name in _cases(cases, "ok", "tiny"):
        image = read_image(folder / name)
        assert image.dtype in (np.uint8, np.uint16) and image.shape[0] >= 1
    assert read_image(folder / "exif rotated.jpg").shape == (100, 60, 3)  # stored 100x60
    for name in _cases(cases, "bad"):
        with pytest.raises(ValueError) as info:
            read_image(folder / name)
        assert str(info.value).startswith(str(folder / name) + ": ")
        assert "\n" not in str(info.value)


def test_deblur_cli_processes_the_good_files_and_names_each_bad_one(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    code, stderr, peak_kb = _run("keras_deblur.deblur", f"--input={folder}", f"--output_dir={out}")
    assert code == 1, stderr[-3000:]
    _assert_each_named_once(stderr, _cases(cases, "bad", "tiny"))
    for name in _cases(cases, "ok"):
        assert read_image(out / name).shape[:2] == read_image(folder / name).shape[:2], name
    assert peak_kb < PEAK_MEMORY_LIMIT_KB
    assert not os.path.exists(out / "nested")  # the folder loop was not followed

    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    code, stderr, _ = _run("keras_deblur.deblur", f"--input={folder}", f"--output_dir={blocked}")
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        f"error: {blocked}: --output_dir exists and is not a folder"
    )


def test_evaluate_cli_scores_the_good_files_and_names_each_bad_one(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / "eval"
    code, stderr, peak_kb = _run(
        "keras_deblur.evaluate",
        f"--sharp_dir={folder}",
        f"--output_dir={out}",
        "--exposure=0.005",
        "--noreport",
    )
    assert code == 1, stderr[-3000:]
    _assert_each_named_once(stderr, _cases(cases, "bad", "tiny"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == len(_cases(cases, "ok"))
    assert len(summary["skipped"]) == len(_cases(cases, "bad", "tiny"))
    assert peak_kb < PEAK_MEMORY_LIMIT_KB


def test_blur_cli_writes_pairs_for_the_readable_files_and_names_each_bad_one(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / "pairs"
    code, stderr, peak_kb = _run("keras_deblur.blur", f"--input={folder}", f"--output={out}")
    assert code == 1, stderr[-3000:]
    _assert_each_named_once(stderr, _cases(cases, "bad"))
    assert len(os.listdir(out / "blur")) == len(_cases(cases, "ok", "tiny"))
    assert peak_kb < PEAK_MEMORY_LIMIT_KB


def test_training_reader_skips_the_bad_files_and_streams_the_good(corpus, caplog):
    folder, cases = corpus
    dataset = datasets.synthetic_dataset(str(folder), crop_size=32, seed=0)
    pairs = list(dataset.as_numpy_iterator())  # one epoch: each usable photo once
    assert len(pairs) == len(_cases(cases, "ok", "tiny"))
    assert all(blurred.shape == (32, 32, 3) for blurred, _ in pairs)
    warned = " ".join(record.getMessage() for record in caplog.records)
    for name in _cases(cases, "bad"):
        assert name in warned, name
