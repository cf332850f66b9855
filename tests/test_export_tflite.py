"""TFLite export: builtin-only conversion, validation reports, the padding contract,
the Android sample's Python twin, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from export import android_reference as android
from export.calibration import embedded_pairs
from export.convert import ExportError, convert_generator, list_operators, parse_input_size
from export.runtime import TFLiteGenerator
from export.tflite import export_generator
from export.validate import gpu_compatibility
from keras_deblur import build_generator
from keras_deblur.inference import deblur, from_model_range, predict_tiled, to_model_range
from keras_deblur.metrics import psnr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 48
# Mild blur plus noise: a short fit of a small generator learns to denoise
# (deblurring takes far longer to learn), which is enough to give its weights
# and activations trained ranges.
BLUR = {"max_length": 10.0, "noise_std": 0.04}


def _small_generator(**kwargs):
    return build_generator(num_filters=8, num_res_blocks=1, dropout_rate=0.0, **kwargs)


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(7)
    return _small_generator()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small generator fitted briefly (L1) to blurred/sharp crops, saved as .keras.

    Quantization error depends on the weights' and activations' ranges, which
    random weights do not have; a supervised fit gives them realistic ones.
    Returns the path and the training L1 loss before and after the fit.
    """
    keras.utils.set_random_seed(3)
    blurred, sharp = map(np.stack, embedded_pairs("train", (SIZE, SIZE), 48, seed=1, **BLUR))
    model = build_generator(num_filters=16, num_res_blocks=2, dropout_rate=0.0)
    # Start from the identity (zero residual) so that a short fit improves on the input.
    tail = model.get_layer("tail_conv")
    tail.set_weights([np.zeros_like(w) for w in tail.get_weights()])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    loss_before = model.evaluate(blurred, sharp, verbose=0)
    model.fit(blurred, sharp, batch_size=8, epochs=12, verbose=0)
    loss_after = model.evaluate(blurred, sharp, verbose=0)
    path = tmp_path_factory.mktemp("trained") / "generator.keras"
    model.save(path)
    return str(path), loss_before, loss_after


@pytest.fixture(scope="module")
def trained_path(trained):
    return trained[0]


@pytest.fixture(scope="module")
def trained_reports(trained_path, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("export")
    reports = export_generator(
        trained_path,
        output_dir,
        quantizations=("fp32", "fp16", "dynamic", "int8"),
        input_sizes=[(SIZE, SIZE)],
        num_calibration_images=16,
        num_validation_images=6,
        latency_repeats=2,
        blur_options=BLUR,
    )
    return {report["quantization"]: (path, report) for path, report in reports.items()}


@pytest.mark.parametrize("quantization", ["fp32", "fp16", "dynamic", "int8"])
def test_every_quantization_converts_to_builtin_ops_only(generator, quantization):
    images = [
        np.random.default_rng(i).uniform(-1, 1, (32, 32, 3)).astype("float32") for i in range(4)
    ]
    flatbuffer = convert_generator(
        generator,
        quantization,
        (32, 32),
        representative_dataset=lambda: ([image[None]] for image in images),
    )
    operators = list_operators(flatbuffer)
    assert not [op for op in operators if op.startswith(("CUSTOM", "UNKNOWN"))]
    # The XNNPACK rewrite leaves none of the ops XNNPACK runs slowly or not at all.
    assert not {"MIRROR_PAD", "TRANSPOSE_CONV", "SQUARED_DIFFERENCE"} & set(operators)
    # Winograd (fp32 only by default) folds its kernel transform to constants.
    assert ("SPACE_TO_DEPTH" in operators) == (quantization == "fp32")
    assert not {"EINSUM", "BATCH_MATMUL", "TRANSPOSE"} & set(operators)
    output = TFLiteGenerator(flatbuffer).predict_on_batch(images[0][None])
    assert output.shape == (1, 32, 32, 3) and np.all(np.abs(output) <= 1.0)


def test_unoptimized_graph_keeps_the_keras_layers(generator):
    operators = list_operators(convert_generator(generator, "fp32", (32, 32), optimize_graph=False))
    # Reflection padding survives as the builtin MIRROR_PAD, not a Flex op.
    assert operators["MIRROR_PAD"] == 4 and operators["CONV_2D"] == 6
    assert operators["TRANSPOSE_CONV"] == 2


def test_int8_instance_norm_is_nearly_as_close_to_keras_as_a_float_one(generator):
    images = [
        np.random.default_rng(i).uniform(-1, 1, (32, 32, 3)).astype("float32") for i in range(4)
    ]

    def representative():
        return ([image[None]] for image in images)

    full = convert_generator(generator, "int8", (32, 32), representative_dataset=representative)
    mixed = convert_generator(
        generator, "int8", (32, 32), representative_dataset=representative, float_norm=True
    )
    assert list_operators(mixed)["QUANTIZE"] > list_operators(full)["QUANTIZE"] == 1
    expected = from_model_range(generator.predict_on_batch(images[0][None])[0])
    fidelity = {
        name: psnr(
            from_model_range(TFLiteGenerator(fb).predict_on_batch(images[0][None])[0]), expected
        )
        for name, fb in (("full", full), ("mixed", mixed))
    }
    # Float norms are closer still, but the int8 norm no longer costs much:
    # its variance is a MUL (int8 SQUARED_DIFFERENCE lost 8 dB here: 34.3 vs 42.7).
    assert fidelity["full"] < fidelity["mixed"] < fidelity["full"] + 3.0


def test_quantized_models_are_smaller(trained_reports):
    size = {q: report["size_bytes"] for q, (_, report) in trained_reports.items()}
    assert size["fp16"] < 0.6 * size["fp32"]
    assert size["dynamic"] < 0.4 * size["fp32"]
    assert size["int8"] < 0.4 * size["fp32"]


def test_reports_beside_models_meet_the_thresholds(trained_reports):
    for quantization, (path, report) in trained_reports.items():
        with open(os.path.splitext(path)[0] + ".json") as file:
            on_disk = json.load(file)
        assert on_disk["size_bytes"] == os.path.getsize(path) == report["size_bytes"]
        assert on_disk["passed"], quantization
        assert set(on_disk["latency_ms"]) == {"1_threads", "2_threads"}
        assert all(ms > 0 for ms in on_disk["latency_ms"].values())
        assert on_disk["io"]["input"]["name"] == "blurred"
        assert on_disk["io"]["output"]["name"] == "deblurred"
        assert on_disk["io"]["input"]["shape"] == [1, SIZE, SIZE, 3]
        assert "psnr_tflite_vs_sharp_db" in on_disk
    fp32, fp16 = trained_reports["fp32"][1], trained_reports["fp16"][1]
    assert _agrees(fp32, 45.0) and _agrees(fp16, 40.0)
    # The fixed-size float models only use ops the GPU delegate supports.
    assert fp32["gpu_compatible"] and fp16["gpu_compatible"]
    assert fp32["gpu_issues"] == [] and "GPU" in fp32["gpu_analyzer"]


def test_trained_model_improves_and_int8_stays_close(trained, trained_reports):
    _, loss_before, loss_after = trained
    # The fit starts from the identity and must improve on it (a brief fit of
    # this architecture gains little; what matters here is trained weight and
    # activation ranges).
    assert loss_after < loss_before
    fp32, int8 = trained_reports["fp32"][1], trained_reports["int8"][1]
    assert fp32["psnr_tflite_vs_sharp_db"] == pytest.approx(
        fp32["psnr_keras_vs_sharp_db"], abs=0.01
    )
    assert int8["psnr_drop_vs_fp32_db"] == pytest.approx(
        int8["psnr_fp32_tflite_vs_sharp_db"] - int8["psnr_tflite_vs_sharp_db"]
    )
    assert int8["psnr_drop_vs_fp32_db"] <= 1.0
    assert int8["calibration"]["images"] == 16
    assert "QUANTIZE" in int8["ops"] and "DEQUANTIZE" in int8["ops"]  # float I/O


def test_int8_with_uint8_io_and_user_folders(trained_path, tmp_path):
    from keras_deblur.data.images import write_image

    photos = tmp_path / "photos"
    photos.mkdir()
    blurred = embedded_pairs("validation", (SIZE, SIZE), 3, seed=5, **BLUR)[0]
    for index, image in enumerate(blurred):
        write_image(str(photos / f"{index}.png"), from_model_range(image))
    reports = export_generator(
        trained_path,
        tmp_path / "out",
        quantizations=("int8",),
        input_sizes=[(SIZE, SIZE)],
        io_type="uint8",
        calibration_dir=str(photos),
        validation_dir=str(photos),
        num_validation_images=3,
        latency_repeats=1,
    )
    report = next(r for r in reports.values() if r["quantization"] == "int8")
    assert report["io"]["input"]["dtype"] == "uint8"
    # Calibration pins the input range to [-1, 1] even if the photos lack black and white.
    assert report["io"]["input"]["quantization"]["scale"] == pytest.approx(2 / 255, rel=0.01)
    assert report["io"]["output"]["quantization"]["scale"] == pytest.approx(2 / 255, rel=0.01)
    assert report["calibration"] == {"images": 3, "source": str(photos)}
    assert "psnr_tflite_vs_sharp_db" not in report  # no sharp images in a user folder
    assert _agrees(report, 35.0)


def test_gpu_check_flags_unsupported_ops_and_dynamic_shapes(generator):
    import tensorflow as tf

    inputs = keras.Input((16, 16, 3), batch_size=1)
    outputs = keras.layers.Lambda(lambda x: ops.top_k(x, 3)[0])(inputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    compatible, issues, analyzer_text = gpu_compatibility(converter.convert())
    assert not compatible and any("TOPK_V2" in issue for issue in issues)
    # The analyzer's own GPU check is a no-op in this TensorFlow: it passes TOPK_V2.
    assert "compatible with GPU delegate" in analyzer_text
    compatible, issues, _ = gpu_compatibility(convert_generator(generator, "fp32", None))
    assert not compatible and any("dynamic input shape" in issue for issue in issues)
    assert gpu_compatibility(convert_generator(generator, "fp32", (32, 32)))[:2] == (True, [])
    # 5-D tensors (e.g. an interleave by stacking) are beyond the GPU delegate.
    inputs = keras.Input((4, 4, 3), batch_size=1)
    outputs = keras.layers.Lambda(lambda x: ops.reshape(x[:, :, :, None] + 1, (1, 4, 4, 3)))(inputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    compatible, issues, _ = gpu_compatibility(converter.convert())
    assert not compatible and any("5-D tensors" in issue for issue in issues)


def test_select_tf_ops_are_refused_in_one_line():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: ops.tanh(ops.sinh(x)))(inputs)
    with pytest.raises(ExportError) as error:
        convert_generator(keras.Model(inputs, outputs), "fp32", (32, 32), name="odd.keras")
    message = str(error.value)
    assert "\n" not in message and "odd.keras" in message and "Sinh" in message


def test_dynamic_model_runs_odd_sizes_through_the_padding_contract(generator):
    dynamic = TFLiteGenerator(convert_generator(generator, "fp32", None))
    assert dynamic.input_size is None
    for height, width in [(37, 51), (9, 30), (64, 20)]:
        photo = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
        tflite_result = deblur(dynamic, photo)
        keras_result = deblur(generator, photo)
        assert tflite_result.shape == photo.shape
        assert psnr(tflite_result, keras_result) >= 45.0
    with pytest.raises(ValueError, match="multiples of 4"):
        dynamic.predict_on_batch(np.zeros((1, 37, 51, 3), np.float32))


def test_validation_fails_when_tflite_and_keras_disagree(generator):
    from export.validate import validate_tflite

    flatbuffer = convert_generator(generator, "fp32", (32, 32))
    images = [np.random.default_rng(9).uniform(-1, 1, (32, 32, 3)).astype("float32")]
    same = validate_tflite(flatbuffer, generator, images, quantization="fp32", latency_repeats=1)
    assert same["passed"] and _agrees(same, 45.0)
    keras.utils.set_random_seed(99)
    other = _small_generator()  # same architecture, other weights: not what was exported
    report = validate_tflite(flatbuffer, other, images, quantization="fp32", latency_repeats=1)
    assert not report["passed"] and report["psnr_vs_keras_db"] < 45.0


def test_fixed_model_refuses_other_sizes(generator):
    fixed = TFLiteGenerator(convert_generator(generator, "fp32", (32, 32)))
    assert fixed.input_size == (32, 32)
    with pytest.raises(ValueError, match="32x32"):
        fixed.predict_on_batch(np.zeros((1, 36, 32, 3), np.float32))


def test_input_sizes_must_follow_the_padding_contract():
    assert parse_input_size("256x256") == (256, 256)
    assert parse_input_size("dynamic") is None
    for bad in ["255x256", "4x4", "256", "big"]:
        with pytest.raises(ExportError):
            parse_input_size(bad)


def test_unknown_winograd_mode_is_refused_before_loading(generator, tmp_path):
    # The weights path does not exist: the mode must be checked first.
    with pytest.raises(ExportError, match="winograd must be one of") as error:
        export_generator(tmp_path / "missing.keras", tmp_path / "out", winograd="always")
    assert "\n" not in str(error.value)
    with pytest.raises(ExportError, match="winograd must be one of"):
        convert_generator(generator, "fp32", (32, 32), winograd="yes")


def test_bad_weights_give_one_line_errors(tmp_path):
    missing = tmp_path / "missing.keras"
    with pytest.raises(ExportError, match="missing.keras: no such file"):
        export_generator(str(missing), tmp_path / "out")

    # A valid .keras file that is not a generator: one-channel output.
    inputs = keras.Input((None, None, 3))
    not_generator = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    path = tmp_path / "critic_like.keras"
    not_generator.save(path)
    with pytest.raises(ExportError) as error:
        export_generator(str(path), tmp_path / "out")
    assert "\n" not in str(error.value) and "critic_like.keras" in str(error.value)

    # Three channels in and out, but half the resolution out.
    halving = keras.Model(inputs, keras.layers.Conv2D(3, 3, strides=2, padding="same")(inputs))
    path = tmp_path / "halving.keras"
    halving.save(path)
    with pytest.raises(ExportError, match="not a DeblurGAN generator"):
        convert_generator(keras.saving.load_model(path), "fp32", (32, 32), name=str(path))


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "export.tflite", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_cli_writes_model_and_report(generator, tmp_path):
    weights = tmp_path / "small.keras"
    generator.save(weights)
    out = tmp_path / "out"
    result = _run_cli(
        "--weights",
        weights,
        "--output_dir",
        out,
        "--input_size",
        "32x32",
        "--num_validation_images",
        1,
        "--latency_repeats",
        1,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "generator_fp32_32x32.json") as file:
        report = json.load(file)
    assert report["passed"] and report["io"]["input"]["shape"] == [1, 32, 32, 3]
    assert report["graph"] == {"xnnpack_rewrite": True, "winograd": True}
    # head, 2 down, 2 residual convs as 16 Winograd GEMMs each, 2 x 4 parity convs, tail.
    assert list_operators(str(out / "generator_fp32_32x32.tflite"))["CONV_2D"] == 1 + 2 + 32 + 8 + 1


def test_cli_exits_with_one_line_for_missing_weights(tmp_path):
    result = _run_cli("--weights", tmp_path / "nope.keras", "--output_dir", tmp_path / "out")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: {tmp_path / 'nope.keras'}: no such file"


# The Android sample's Python twin.


def test_argb_packing_and_ranges_match_the_python_pipeline():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    alpha = np.random.default_rng(1).integers(0, 256, (5, 7), dtype=np.uint8)
    pixels = android.pack_argb(rgb, alpha)
    assert pixels.dtype == np.int32
    unpacked_rgb, unpacked_alpha = android.unpack_argb(pixels)
    np.testing.assert_array_equal(unpacked_rgb, rgb)
    np.testing.assert_array_equal(unpacked_alpha, alpha)
    np.testing.assert_array_equal(android.pixels_to_input(pixels), to_model_range(rgb))
    values = np.linspace(-1.2, 1.2, 1001, dtype=np.float32)
    # Kotlin rounds halves up, numpy's rint to even: they may differ only on exact halves.
    scaled = (values + np.float32(1)) * np.float32(127.5)
    not_half = np.abs(scaled - np.floor(scaled) - 0.5) > 1e-3
    np.testing.assert_array_equal(
        android.to_channel(values)[not_half], from_model_range(values)[not_half]
    )


def test_reflect_index_matches_numpy_reflect_even_beyond_one_period():
    for size in [1, 2, 3, 7]:
        row = np.arange(size)
        padded = np.pad(row, (0, 40), mode="reflect") if size > 1 else np.zeros(size + 40, int)
        np.testing.assert_array_equal(android.reflect_index(np.arange(size + 40), size), padded)


def test_android_tiling_equals_the_project_tiling_of_a_fixed_size_model(generator):
    # The sample runs fixed-size models; the project tiles those in their own size (the
    # photo's sides minus the tile are multiples of 4, where both grids agree).
    photo = np.random.default_rng(2).integers(0, 256, (72, 88, 3), dtype=np.uint8)
    reference = android.deblur_rgb(generator.predict_on_batch, photo, (32, 32), overlap=8)
    floats = predict_tiled(generator, to_model_range(photo), tile_overlap=8, input_size=(32, 32))
    project = from_model_range(floats)
    assert np.max(np.abs(reference.astype(int) - project.astype(int))) <= 1


def test_android_pipeline_with_tflite_matches_keras(trained_reports, trained_path):
    model = keras.saving.load_model(trained_path)
    fixed = TFLiteGenerator(trained_reports["fp32"][0])
    photo = np.random.default_rng(3).integers(0, 256, (70, 100, 3), dtype=np.uint8)
    alpha = np.full(photo.shape[:2], 200, np.uint8)
    pixels = android.deblur_pixels(fixed, android.pack_argb(photo, alpha), (SIZE, SIZE), 16)
    on_phone, kept_alpha = android.unpack_argb(pixels)
    np.testing.assert_array_equal(kept_alpha, alpha)
    with_keras = android.deblur_rgb(model.predict_on_batch, photo, (SIZE, SIZE), 16)
    assert psnr(on_phone, with_keras) >= 45.0
    # A photo smaller than a tile is mirrored up to the tile size and cropped back.
    small = photo[:20, :30]
    assert android.deblur_rgb(fixed, small, (SIZE, SIZE), 16).shape == small.shape


def _agrees(report, min_psnr_db):
    """The TFLite output equals Keras' after uint8 rounding, or is within `min_psnr_db`."""
    return report["identical_to_keras"] or report["psnr_vs_keras_db"] >= min_psnr_db


def test_identical_outputs_give_null_psnr_and_a_flag_in_the_json_report(tmp_path):
    from export.tflite import write_report
    from export.validate import validate_tflite
    from keras_deblur.models import build_mobile_generator

    identity = build_mobile_generator(num_filters=8, num_res_blocks=1)  # untrained: the identity
    flatbuffer = convert_generator(identity, "fp32", (32, 32))
    images = [np.random.default_rng(4).uniform(-1, 1, (32, 32, 3)).astype("float32")]
    report = validate_tflite(flatbuffer, identity, images, quantization="fp32", latency_repeats=1)
    assert report["identical_to_keras"] and report["passed"]
    write_report(report, tmp_path / "report.json")
    text = (tmp_path / "report.json").read_text()
    on_disk = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert on_disk["psnr_vs_keras_db"] is None and on_disk["identical_to_keras"] is True
