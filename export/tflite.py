"""Export stage: a trained generator -> validated TFLite (LiteRT) models.

    python -m export.tflite --weights G.keras --output_dir out \\
        --quantization fp32|fp16|dynamic|int8|all --input_size 256x256|dynamic

For each requested variant this writes `out/generator_<quantization>_<size>
.tflite` and, beside it, a `.json` validation report (see
`export.validate.validate_tflite`). The command exits with status 1 when a
model fails validation (fp32 below 45 dB or fp16 below 40 dB PSNR against
the Keras output) and with a one-line message for bad input.

From a notebook, call `export_generator(...)` with a path or a `keras.Model`.
"""

import json
import logging
import os
import sys

from export import calibration
from export.convert import (
    QUANTIZATIONS,
    WINOGRAD_MODES,
    ExportError,
    check_input_size,
    check_winograd_mode,
    convert_generator,
    parse_input_size,
    size_tag,
    uses_winograd,
)
from export.validate import DEFAULT_LATENCY_SIZE, report_path, validate_tflite

logger = logging.getLogger(__name__)


def write_report(report, path):
    """Writes a validation report as indented JSON (PSNRs of identical outputs as null)."""
    from keras_deblur.metrics import json_safe

    with open(path, "w") as file:
        json.dump(json_safe(report), file, indent=2)
        file.write("\n")


def _load(weights):
    import keras

    from keras_deblur import load_generator

    if isinstance(weights, keras.Model):
        return weights, weights.name
    try:
        return load_generator(weights), os.fspath(weights)
    except FileNotFoundError as error:
        raise ExportError(str(error)) from None
    except ValueError as error:
        raise ExportError(str(error).splitlines()[0]) from None


def _validation_data(size, count, validation_dir, seed, blur_options):
    """(blurred, sharp or None) float images of `size` for validation."""
    if validation_dir is not None:
        return calibration.folder_images(validation_dir, size, count), None
    return calibration.embedded_pairs("validation", size, count, seed, **blur_options)


def export_generator(
    weights,
    output_dir,
    quantizations=("fp32",),
    input_sizes=((256, 256),),
    io_type="float",
    int8_float_norm=False,
    optimize_graph=True,
    winograd="auto",
    calibration_dir=None,
    num_calibration_images=16,
    validation_dir=None,
    num_validation_images=4,
    latency_repeats=5,
    validation_size=None,
    seed=0,
    blur_options=None,
):
    """Converts, validates and reports every requested variant.

    Args:
        weights: path of a `.keras` (or `.weights.h5`) generator, or a
            `keras.Model`.
        output_dir: str. Created if missing.
        quantizations: subset of `("fp32", "fp16", "dynamic", "int8")`. fp32
            is always converted too when int8 is asked for, as the reference
            of int8's PSNR drop.
        input_sizes: list of `(height, width)` (multiples of 4) or None for
            a dynamic-shape model.
        io_type: `"float"`, `"int8"` or `"uint8"` input/output of int8 models.
        int8_float_norm: bool. Keep InstanceNorm in float32 in the int8
            model (mixed int8/float, float I/O); see `convert_generator`.
        optimize_graph: bool. Convert the XNNPACK-friendly rewrite of the
            generator (`export.xnnpack_graph`). Defaults to True.
        winograd: `"auto"` (fp32 only), `"on"` or `"off"`:
            3x3 convs by Winograd F(2x2, 3x3) in the rewrite.
        calibration_dir: folder of blurred photos for int8 calibration;
            None: synthetic blur of the embedded photos.
        num_calibration_images: int. Calibration images.
        validation_dir: folder of blurred photos for validation (no sharp
            images, so no PSNR against sharp); None: the embedded validation
            photos with synthetic blur.
        num_validation_images: int. Validation images.
        latency_repeats: int. Timed runs per thread count.
        validation_size: `(height, width)` of validation, calibration and
            timing images for dynamic-shape models. Defaults to 256x256.
        seed: int. Seed of the synthetic blur.
        blur_options: dict or None. Options of the synthetic blur of the
            embedded photos (`keras_deblur.data.datasets.embedded_dataset`),
            e.g. `{"max_length": 15.0}` for small images.

    Returns:
        dict mapping each written `.tflite` path to its report (also written
        as JSON beside the model). Check `report["passed"]`.

    Raises:
        ExportError: one line, for a missing or wrong weights file, a bad
            size, ops outside the TFLite builtins, or a failed conversion.
    """
    for quantization in quantizations:
        if quantization not in QUANTIZATIONS:
            raise ExportError(
                f"quantization must be one of {QUANTIZATIONS} or 'all'. Received: {quantization!r}"
            )
    for size in input_sizes:
        check_input_size(size)
    check_winograd_mode(winograd)  # before the slow part
    model, name = _load(weights)
    blur_options = blur_options or {}
    os.makedirs(output_dir, exist_ok=True)
    # fp32 first: int8's drop is measured against it.
    ordered = [
        q for q in QUANTIZATIONS if q in quantizations or (q == "fp32" and "int8" in quantizations)
    ]
    reports = {}
    for size in input_sizes:
        data_size = size or validation_size or DEFAULT_LATENCY_SIZE
        blurred, sharp = _validation_data(
            data_size, num_validation_images, validation_dir, seed, blur_options
        )
        calibration_images = None
        fp32_flatbuffer = None
        for quantization in ordered:
            representative = None
            if quantization == "int8":
                if calibration_images is None:
                    calibration_images = calibration.calibration_images(
                        data_size, num_calibration_images, calibration_dir, seed, **blur_options
                    )
                representative = calibration.representative_dataset(calibration_images)
            logger.info("Converting %s (%s, %s)", name, quantization, size_tag(size))
            flatbuffer = convert_generator(
                model,
                quantization,
                size,
                representative_dataset=representative,
                io_type=io_type if quantization == "int8" else "float",
                float_norm=int8_float_norm and quantization == "int8",
                optimize_graph=optimize_graph,
                winograd=winograd,
                name=name,
            )
            if quantization == "fp32":
                fp32_flatbuffer = flatbuffer
            path = os.path.join(output_dir, f"generator_{quantization}_{size_tag(size)}.tflite")
            with open(path, "wb") as file:
                file.write(flatbuffer)
            logger.info("Validating %s", path)
            report = validate_tflite(
                flatbuffer,
                model,
                blurred,
                sharp,
                quantization=quantization,
                latency_size=data_size,
                latency_repeats=latency_repeats,
                reference_tflite=fp32_flatbuffer if quantization != "fp32" else None,
            )
            report["model_path"] = os.path.basename(path)
            report["source"] = name
            report["graph"] = {
                "xnnpack_rewrite": optimize_graph,
                "winograd": optimize_graph and uses_winograd(quantization, winograd),
            }
            if quantization == "int8":
                report["instance_norm"] = "float32" if int8_float_norm else "int8"
                report["calibration"] = {
                    "images": len(calibration_images),
                    "source": calibration_dir
                    or "embedded photos, synthetic motion blur (train split)",
                }
            write_report(report, report_path(path))
            reports[path] = report
    return reports


def summarize(reports):
    """One log line per model, and the fixed vs dynamic latency ratio when both exist."""
    lines = []
    by_key = {}
    for path, report in reports.items():
        latency = report["latency_ms"]
        vs_sharp = report.get("psnr_tflite_vs_sharp_db")
        lines.append(
            f"{os.path.basename(path)}: {report['size_bytes'] / 1e6:.2f} MB, "
            + (
                "identical to Keras"
                if report["identical_to_keras"]
                else f"PSNR vs Keras {report['psnr_vs_keras_db']:.2f} dB"
            )
            + (f", vs sharp {vs_sharp:.2f} dB" if vs_sharp is not None else "")
            + (
                f", drop vs fp32 {report['psnr_drop_vs_fp32_db']:.2f} dB"
                if "psnr_drop_vs_fp32_db" in report
                else ""
            )
            + ", latency "
            + ", ".join(f"{k.replace('_', ' ')} {v:.1f} ms" for k, v in latency.items())
            + f" at {report['latency_size']}"
            + (", GPU ok" if report["gpu_compatible"] else ", GPU NOT compatible")
            + ("" if report["passed"] else " -- FAILED")
        )
        by_key[(report["quantization"], report["input_size"])] = report
    for (quantization, size), report in by_key.items():
        dynamic = by_key.get((quantization, "dynamic"))
        if size != "dynamic" and dynamic and dynamic["latency_size"] == report["latency_size"]:
            ratio = dynamic["latency_ms"]["1_threads"] / report["latency_ms"]["1_threads"]
            lines.append(
                f"{quantization}: dynamic-shape / fixed-size latency at {size} = {ratio:.2f}x"
            )
    return lines


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    # absl logs at INFO; keep TensorFlow's own INFO chatter (SavedModel
    # writing, sharding callbacks) out of the export log.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    quantizations = QUANTIZATIONS if f.quantization == "all" else (f.quantization,)
    try:
        sizes = [parse_input_size(text) for text in f.input_size.split(",")]
        reports = export_generator(
            f.weights,
            f.output_dir,
            quantizations=quantizations,
            input_sizes=sizes,
            io_type=f.io_type,
            int8_float_norm=f.int8_float_norm,
            optimize_graph=f.optimize_graph,
            winograd=f.winograd,
            calibration_dir=f.calibration_dir,
            num_calibration_images=f.num_calibration_images,
            validation_dir=f.validation_dir,
            num_validation_images=f.num_validation_images,
            latency_repeats=f.latency_repeats,
            seed=f.seed,
        )
    except (ExportError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    for line in summarize(reports):
        logging.info(line)
    failed = [os.path.basename(p) for p, r in reports.items() if not r["passed"]]
    if failed:
        sys.exit(
            f"error: validation failed for {', '.join(failed)} (PSNR vs Keras below threshold)"
        )


def _define_flags():
    from absl import flags

    from keras_deblur.pretrained import DEFAULT_PRESET, PRESETS

    flags.DEFINE_string(
        "weights",
        DEFAULT_PRESET,
        f"Generator .keras (or .weights.h5) file, or a pretrained preset ({', '.join(PRESETS)}).",
    )
    flags.DEFINE_string(
        "output_dir", None, "Where the .tflite files and reports go.", required=True
    )
    flags.DEFINE_enum("quantization", "fp32", [*QUANTIZATIONS, "all"], "Variant(s) to export.")
    flags.DEFINE_string(
        "input_size",
        "256x256",
        "HEIGHTxWIDTH (multiples of 4) or 'dynamic'; comma-separate for both.",
    )
    flags.DEFINE_enum(
        "io_type", "float", ["float", "int8", "uint8"], "Input/output type of int8 models."
    )
    flags.DEFINE_bool(
        "int8_float_norm", False, "int8 model with InstanceNorm kept in float32 (float I/O)."
    )
    flags.DEFINE_bool(
        "optimize_graph",
        True,
        "Convert the XNNPACK-friendly rewrite (sliced reflection padding, transposed convs as "
        "four convs); --nooptimize_graph converts the Keras layers as they are.",
    )
    flags.DEFINE_enum(
        "winograd",
        "auto",
        list(WINOGRAD_MODES),
        "3x3 convs by Winograd F(2x2,3x3) in the rewrite; auto: fp32 models (weights 16/9 larger).",
    )
    flags.DEFINE_string(
        "calibration_dir", None, "Blurred photos for int8 calibration (default: embedded)."
    )
    flags.DEFINE_integer("num_calibration_images", 16, "Images for int8 calibration.")
    flags.DEFINE_string(
        "validation_dir", None, "Blurred photos for validation (default: embedded)."
    )
    flags.DEFINE_integer("num_validation_images", 4, "Images for validation.")
    flags.DEFINE_integer("latency_repeats", 5, "Timed runs per thread count.")
    flags.DEFINE_integer("seed", 0, "Seed of the synthetic blur.")


if __name__ == "__main__":
    from keras_deblur.native_log import filter_harmless_native_errors

    filter_harmless_native_errors()
    from absl import app

    _define_flags()
    app.run(main)
