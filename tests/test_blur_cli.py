"""`python -m keras_deblur.blur` and the library function behind it."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_deblur.blur import blur_photos, parse_levels
from keras_deblur.data.images import read_image, write_image
from keras_deblur.data.paired_folders import find_image_pairs, kernel_to_png, write_blurred_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    write_image(folder / "a.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    write_image(folder / "scene" / "b.jpg", rng.integers(0, 256, (36, 36, 3), dtype=np.uint8))
    write_image(folder / "gray16.png", rng.integers(0, 65536, (32, 32), dtype=np.uint16))
    return folder


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "keras_deblur.blur", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )


def test_cli_writes_a_gopro_layout_that_paired_dataset_reads(photos, tmp_path):
    (photos / "broken.png").write_bytes(b"not a png")
    output = tmp_path / "dataset"
    result = _run_cli(
        f"--input={photos}", f"--output={output}", "--blurs_per_image=2", "--save_kernels"
    )
    assert result.returncode == 1, result.stderr  # one skipped file
    assert "broken.png" in result.stderr
    assert "Wrote 6 blurred/sharp pairs" in result.stdout
    pairs = find_image_pairs(str(output))
    names = sorted(os.path.relpath(blurred, output / "blur") for blurred, _ in pairs)
    assert names == [
        "a_0.png",
        "a_1.png",
        "gray16_0.png",
        "gray16_1.png",
        os.path.join("scene", "b_0.png"),
        os.path.join("scene", "b_1.png"),
    ]
    for blurred_path, sharp_path in pairs:
        blurred, sharp = read_image(blurred_path), read_image(sharp_path)
        assert blurred.shape == sharp.shape and blurred.dtype == sharp.dtype
        assert not np.array_equal(blurred, sharp)
    np.testing.assert_array_equal(
        read_image(output / "sharp" / "a_0.png"), read_image(photos / "a.png")
    )
    kernel = read_image(output / "kernels" / "a_1.png")
    assert kernel.dtype == np.uint16 and kernel.max() == 65535


def test_a_missing_input_is_reported_in_one_line(tmp_path, capsys):
    assert blur_photos(str(tmp_path / "nothing"), str(tmp_path / "out")) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "nothing" in error and len(error.splitlines()) == 1


def test_an_output_folder_inside_the_input_is_not_read_back(photos, capsys):
    for _ in range(2):
        assert blur_photos(str(photos), str(photos / "out"), progress=False) == 0
    assert "Wrote 3 blurred/sharp pairs" in capsys.readouterr().out.splitlines()[-1]
    assert len(find_image_pairs(str(photos / "out"))) == 3


def test_bad_options_are_reported_in_one_line(photos, tmp_path, capsys):
    assert blur_photos(str(photos), str(tmp_path / "out"), gamma=0.0, progress=False) == 2
    assert "gamma must be positive" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_dataset(photos, tmp_path):
    paths = sorted(str(p) for p in photos.rglob("*.*"))
    for name, seed in (("first", 3), ("again", 3), ("other", 4)):
        written, problems = write_blurred_dataset(paths, tmp_path / name, seed=seed, progress=False)
        assert written == 3 and not problems
    first, again, other = (
        read_image(tmp_path / n / "blur" / "a.png") for n in ("first", "again", "other")
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_options_reach_the_blur(photos, tmp_path):
    paths = [str(photos / "a.png")]
    write_blurred_dataset(paths, tmp_path / "short", max_length=0.2, progress=False)
    write_blurred_dataset(paths, tmp_path / "long", max_length=40.0, exposure=0.0, progress=False)
    sharp = read_image(photos / "a.png").astype(float)
    short = read_image(tmp_path / "short" / "blur" / "a.png").astype(float)
    long = read_image(tmp_path / "long" / "blur" / "a.png").astype(float)
    assert np.abs(long - sharp).mean() > 3 * np.abs(short - sharp).mean()


def test_only_unreadable_inputs_is_an_error(tmp_path, caplog):
    (tmp_path / "empty.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="none of the 1"):
        write_blurred_dataset([str(tmp_path / "empty.png")], tmp_path / "out", progress=False)
    assert any("empty.png: empty file" in record.getMessage() for record in caplog.records)


def test_kernel_png_keeps_the_kernel_shape():
    kernel = np.array([[0.0, 0.25], [0.5, 0.25]], np.float32)
    np.testing.assert_array_equal(kernel_to_png(kernel), [[0, 32768], [65535, 32768]])


def test_parse_levels():
    assert parse_levels(["0.01", "uniform"], "exposure", allow_uniform=True) == [0.01, None]
    with pytest.raises(ValueError, match="--fraction takes numbers"):
        parse_levels(["uniform"], "fraction")
