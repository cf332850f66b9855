import os
import subprocess
import sys

import numpy as np
import pytest

from keras_deblur.data.images import read_image, write_image
from keras_deblur.deblur import deblur_files, output_paths
from keras_deblur.models import build_generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "G.keras"
    build_generator(num_res_blocks=1, num_filters=8).save(path)
    return str(path)


@pytest.fixture()
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    write_image(folder / "a.png", rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    write_image(folder / "sub" / "b.jpg", rng.integers(0, 256, (40, 32, 3), dtype=np.uint8))
    write_image(folder / "gray.png", rng.integers(0, 256, (20, 24), dtype=np.uint8))
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "keras_deblur.deblur", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )


def test_cli_processes_good_files_names_bad_ones_and_fails(weights, photos, tmp_path):
    out = tmp_path / "out"
    result = _run_cli(
        f"--weights={weights}", f"--input={photos}", f"--output_dir={out}", "--compare"
    )
    assert result.returncode == 1, result.stderr
    assert read_image(out / "a.png").shape == (37, 53, 3)
    assert read_image(out / "sub" / "b.jpg").shape == (40, 32, 3)
    assert read_image(out / "gray.png").shape == (20, 24)
    assert read_image(out / "a_compare.png").shape == (37, 106, 3)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any("corrupt.png: not a readable image" in line for line in errors)
    assert any("empty.jpg: empty file" in line for line in errors)
    assert errors[-1] == "error: 2 of 5 failed (named above)"
    assert "Deblurred 3 of 5 images" in result.stdout


def test_cli_succeeds_on_a_single_good_file(weights, photos, tmp_path):
    out = tmp_path / "out"
    result = _run_cli(f"--weights={weights}", f"--input={photos / 'a.png'}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert os.listdir(out) == ["a.png"]


def test_cli_reports_a_missing_weights_file_in_one_line(photos, tmp_path):
    result = _run_cli("--weights=missing.keras", f"--input={photos}", f"--output_dir={tmp_path}")
    assert result.returncode == 2
    assert "error: missing.keras: no such file" in result.stderr


def test_glob_inputs_keep_paths_relative_to_their_common_folder(tmp_path):
    inputs = [str(tmp_path / "x" / "a.png"), str(tmp_path / "y" / "a.png")]
    assert output_paths(inputs, "out") == [
        os.path.join("out", "x", "a.png"),
        os.path.join("out", "y", "a.png"),
    ]


def test_library_refuses_to_overwrite_inputs(weights, photos):
    from keras_deblur.models import load_generator

    written, failures = deblur_files(
        load_generator(weights), [str(photos / "a.png")], str(photos), progress=False
    )
    assert written == [] and "refusing to overwrite" in failures[0][1]


def _identity(path):
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns


def test_skip_existing_leaves_finished_outputs_alone_and_redoes_the_rest(weights, photos, tmp_path):
    from keras_deblur.deblur import compare_path
    from keras_deblur.models import load_generator

    out = tmp_path / "out"
    inputs = [str(photos / "a.png"), str(photos / "gray.png"), str(photos / "sub" / "b.jpg")]
    write_image(out / "a.png", np.zeros((4, 4, 3), np.uint8))  # finished: skipped
    write_image(out / "a_compare.png", np.zeros((4, 8, 3), np.uint8))
    write_image(out / "gray.png", np.zeros((4, 4), np.uint8))  # its compare file is missing
    finished = _identity(out / "a.png"), _identity(out / "a_compare.png")
    written, failures = deblur_files(
        load_generator(weights), inputs, str(out), compare=True, progress=False, skip_existing=True
    )
    assert failures == [] and sorted(written) == [str(out / "gray.png"), str(out / "sub" / "b.jpg")]
    assert (_identity(out / "a.png"), _identity(out / "a_compare.png")) == finished
    assert read_image(out / "gray.png").shape == (20, 24)  # redone: the 4x4 stand-in replaced
    assert os.path.exists(compare_path(str(out / "gray.png")))


def test_cli_skip_existing_says_how_many_it_skipped(weights, photos, tmp_path):
    out = tmp_path / "out"
    write_image(out / "a.png", np.zeros((4, 4, 3), np.uint8))
    before = _identity(out / "a.png")
    result = _run_cli(
        f"--weights={weights}", f"--input={photos}", f"--output_dir={out}", "--skip_existing"
    )
    assert result.returncode == 1, result.stderr  # the two broken files
    assert "Deblurred 2 of 5 images" in result.stdout and "(1 skipped" in result.stdout
    assert _identity(out / "a.png") == before
    assert sorted(os.listdir(out)) == ["a.png", "gray.png", "sub"]  # no temporary files left


def test_cli_without_weights_deblurs_with_the_pretrained_model(tmp_path):
    import skimage.data

    from keras_deblur.data.motion_blur import synthesize_blur

    sharp = skimage.data.chelsea()[80:208, 150:278]  # a validation photo: never trained on
    blurred, _ = synthesize_blur(sharp, np.random.default_rng(0), exposure=0.005, fraction=1.0)
    write_image(tmp_path / "photo.png", blurred)
    result = _run_cli(f"--input={tmp_path / 'photo.png'}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    restored = read_image(tmp_path / "out" / "photo.png")
    assert restored.shape == blurred.shape and not np.array_equal(restored, blurred)


def test_library_releases_freed_memory_after_every_photo(weights, photos, tmp_path, monkeypatch):
    import keras_deblur.deblur as deblur_module
    from keras_deblur.models import load_generator

    calls = []
    monkeypatch.setattr(deblur_module, "release_freed_memory", lambda: calls.append(1))
    inputs = [str(photos / "a.png"), str(photos / "corrupt.png"), str(photos / "gray.png")]
    written, failures = deblur_files(load_generator(weights), inputs, str(tmp_path), progress=False)
    assert len(written) == 2 and len(failures) == 1
    assert len(calls) == 3  # a failed photo's buffers are freed too


def test_cli_switches_tensorflow_to_malloc_before_loading_the_model(weights, photos, tmp_path):
    # TensorFlow reads TF_ONEDNN_USE_SYSTEM_ALLOCATOR once, at its first large
    # allocation: the model's weights. A spy on load_generator sees what it will read.
    spy = (
        "import os, runpy, sys\n"
        "import keras_deblur.models as models\n"
        "load = models.load_generator\n"
        "def spy(path):\n"
        "    print('allocator at load:', os.environ.get('TF_ONEDNN_USE_SYSTEM_ALLOCATOR'))\n"
        "    return load(path)\n"
        "models.load_generator = spy\n"
        "sys.argv[0] = 'deblur'\n"
        "runpy.run_module('keras_deblur.deblur', run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
    result = subprocess.run(
        [sys.executable, "-c", spy, f"--weights={weights}", f"--input={photos / 'a.png'}"]
        + [f"--output_dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "allocator at load: 1" in result.stdout
