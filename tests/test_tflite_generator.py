"""`.tflite` generators behind the inference contract: loaded by path like a `.keras` file,
tiled by `deblur` in the model's own tile size, refused in one line when they are not
generators, and run by the deblur CLI."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.calibration import embedded_pairs, representative_dataset
from export.convert import convert_generator
from keras_deblur.data.images import read_image, write_image
from keras_deblur.inference import (
    SIZE_MULTIPLE,
    deblur,
    from_model_range,
    predict_padded,
    predict_tiled,
    tile_starts,
    to_model_range,
)
from keras_deblur.metrics import psnr
from keras_deblur.models import build_mobile_generator, load_generator
from keras_deblur.models.tflite_generator import TFLiteGenerator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TILE = 96


@pytest.fixture(scope="module")
def generator():
    """A small mobile generator that is not the identity (its tail starts at zero)."""
    keras.utils.set_random_seed(5)
    model = build_mobile_generator(num_filters=8, num_res_blocks=1, channel_attention=False)
    tail = model.get_layer("tail_conv")
    rng = np.random.default_rng(5)
    tail.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in tail.get_weights()])
    return model


@pytest.fixture(scope="module")
def files(generator, tmp_path_factory):
    """fp32 at a fixed tile and dynamic, int8 (float I/O) and int8 with uint8 I/O."""
    folder = tmp_path_factory.mktemp("tflite")
    calibration = embedded_pairs("train", (TILE, TILE), 8, seed=1)[0]
    variants = {
        "fp32": ("fp32", (TILE, TILE), "float"),
        "dynamic_shape": ("fp32", None, "float"),
        "int8": ("int8", (TILE, TILE), "float"),
        "int8_uint8_io": ("int8", (TILE, TILE), "uint8"),
    }
    paths = {}
    for name, (quantization, size, io_type) in variants.items():
        representative = representative_dataset(calibration) if quantization == "int8" else None
        flatbuffer = convert_generator(
            generator, quantization, size, representative_dataset=representative, io_type=io_type
        )
        paths[name] = str(folder / f"{name}.tflite")
        with open(paths[name], "wb") as file:
            file.write(flatbuffer)
    return paths


@pytest.fixture(scope="module")
def photo():
    """A blurred natural photo, not a multiple of the tile (210x300)."""
    blurred, _ = embedded_pairs("validation", (304, 304), 1, seed=2)
    return np.rint((blurred[0][:210, :300] + 1) * 127.5).astype(np.uint8)


def _keras_tiled(generator, photo, overlap=TILE // 4):
    """The Keras model run in the same fixed tiles the .tflite file takes."""
    floats = predict_tiled(
        generator, to_model_range(photo), tile_overlap=overlap, input_size=(TILE, TILE)
    )
    return np.clip(np.rint((floats + 1) * 127.5), 0, 255).astype(np.uint8)


def _seam_mask(height, width, margin=TILE // 4):
    """True within `margin` pixels of a tile edge inside the photo (where tiles meet)."""
    mask = np.zeros((height, width), bool)
    for axis, size in ((0, height), (1, width)):
        starts = tile_starts(size, TILE, TILE // 4, SIZE_MULTIPLE)
        edges = starts[1:] + [start + TILE for start in starts[:-1]]
        near = np.min(np.abs(np.arange(size)[:, None] - np.array(edges)[None]), axis=1) < margin
        mask |= near[:, None] if axis == 0 else near[None, :]
    return mask


def test_load_generator_takes_tflite_files_with_every_cpu_by_default(files):
    model = load_generator(files["fp32"])
    assert isinstance(model, TFLiteGenerator)
    assert model.num_threads == os.cpu_count()
    assert model.input_shape == (None, TILE, TILE, 3)
    assert load_generator(files["dynamic_shape"], num_threads=1).num_threads == 1
    assert load_generator(files["dynamic_shape"]).input_shape == (None, None, None, 3)


def test_fp32_file_agrees_with_keras(generator, files, photo):
    fixed = deblur(load_generator(files["fp32"]), photo)
    assert fixed.shape == photo.shape
    # In the same tiles, the same function up to float rounding.
    assert np.abs(fixed.astype(int) - _keras_tiled(generator, photo)).max() <= 1
    # Against Keras' single pass: equal beyond the network's reach from the tile edges
    # (tile origins on the pixel-unshuffle grid). At the seams, blending random weights'
    # edge effects is not bounded; bench/bench_12mp.py measures them for the shipped model.
    # (The single pass at the 4-pixel grid the tiles see, not deblur's 64-pixel shape
    # bucket, whose wider reflected border moves the channel gates' means.)
    single = from_model_range(predict_padded(generator, to_model_range(photo)), np.uint8)
    difference = np.abs(fixed.astype(int) - single).max(axis=2)
    assert difference[~_seam_mask(*photo.shape[:2])].max() <= 1
    dynamic = deblur(load_generator(files["dynamic_shape"]), photo)
    assert np.abs(dynamic.astype(int) - deblur(generator, photo)).max() <= 1


def test_int8_files_stay_close_to_keras(generator, files, photo):
    reference = _keras_tiled(generator, photo)
    for name in ("int8", "int8_uint8_io"):
        model = load_generator(files[name])
        assert model.io_dtype == (np.uint8 if name == "int8_uint8_io" else np.float32)
        assert psnr(deblur(model, photo), reference) >= 38.0, name


def test_photos_smaller_than_the_tile_are_mirrored_up_and_cropped(generator, files, photo):
    small = photo[:21, :30]
    result = deblur(load_generator(files["fp32"]), small)
    assert result.shape == small.shape
    assert np.abs(result.astype(int) - _keras_tiled(generator, small)).max() <= 1
    rgba = np.dstack([small, np.full(small.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(deblur(load_generator(files["fp32"]), rgba)[:, :, 3], 7)


def test_a_tile_size_for_a_fixed_size_file_is_refused(files, photo):
    with pytest.raises(ValueError, match=f"takes {TILE}x{TILE} inputs only"):
        deblur(load_generator(files["fp32"]), photo, tile_size=128)


@pytest.mark.parametrize("content", [b"", b"TFL3 but not a flatbuffer" * 20])
def test_corrupt_tflite_gives_one_line_naming_it(tmp_path, content):
    path = tmp_path / "broken.tflite"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.tflite: not a readable TFLite model") as info:
        load_generator(path)
    assert "\n" not in str(info.value)


def _convert(model):
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.mark.parametrize(
    "input_shape, found",
    [((None, None, 1), r"\(-1, -1, -1, 1\)"), ((16,), r"\(-1, 16\)")],
    ids=["one_channel", "not_nhwc"],
)
def test_models_that_are_not_rgb_image_to_image_are_refused(tmp_path, input_shape, found):
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(3)(inputs) if len(input_shape) == 1 else inputs * 2.0
    path = tmp_path / "other.tflite"
    path.write_bytes(_convert(keras.Model(inputs, outputs)))
    with pytest.raises(
        ValueError, match=f"other.tflite: not a DeblurGAN generator .*{found}"
    ) as info:
        load_generator(path)
    assert "\n" not in str(info.value)


# Runs a CLI module as `python -m` would, then names the frameworks it imported:
# the `.tflite` path must run without TensorFlow and Keras (0.7 GB of memory).
_RUN_AND_LIST_FRAMEWORKS = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
finally:
    frameworks = sorted({name.split(".")[0] for name in sys.modules} & {"tensorflow", "keras"})
    print("frameworks imported:", frameworks, file=sys.stderr)
"""


def _run_cli_without_frameworks(module, *args):
    """Runs the CLI `module` and checks it succeeded without importing TensorFlow or Keras."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_FRAMEWORKS, module, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "frameworks imported: []" in result.stderr


def test_deblur_cli_takes_a_tflite_file_without_tensorflow(files, photo, tmp_path):
    write_image(tmp_path / "in" / "photo.png", photo)
    _run_cli_without_frameworks(
        "keras_deblur.deblur",
        f"--weights={files['int8']}",
        f"--input={tmp_path / 'in'}",
        f"--output_dir={tmp_path / 'out'}",
    )
    written = read_image(tmp_path / "out" / "photo.png")
    np.testing.assert_array_equal(written, deblur(load_generator(files["int8"]), photo))


def test_evaluate_cli_scores_a_tflite_file_without_tensorflow(files, photo, tmp_path):
    write_image(tmp_path / "sharp" / "photo.png", photo)
    _run_cli_without_frameworks(
        "keras_deblur.evaluate",
        f"--weights={files['dynamic_shape']}",
        f"--sharp_dir={tmp_path / 'sharp'}",
        f"--output_dir={tmp_path / 'eval'}",
    )
    assert (tmp_path / "eval" / "summary.json").is_file()
