"""Checking an exported model against the Keras generator it came from.

Every export is followed by a validation run whose figures go into a JSON
report beside the `.tflite` file: size, PSNR of the TFLite output against
the Keras output (does the phone run what was trained?) and against the
sharp images (what does quantization cost in image quality?), XNNPACK
latency with 1 and 2 threads, the GPU delegate compatibility verdict of the
TFLite analyzer, the op list and the input/output contract.
"""

import contextlib
import io
import math
import os

import numpy as np
import tensorflow as tf

from export.convert import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY, list_operators, size_tag
from export.runtime import TFLiteGenerator, measure_latency
from keras_deblur.inference import from_model_range
from keras_deblur.metrics import finite_mean, psnr

# Minimum PSNR (dB) of the TFLite output against the Keras output. fp32 must
# be the same network up to float rounding; fp16 weights cost a little more.
MIN_PSNR_VS_KERAS = {"fp32": 45.0, "fp16": 40.0}
# Latency is measured at this size for dynamic-shape models.
DEFAULT_LATENCY_SIZE = (256, 256)


# Builtin ops the TFLite GPU delegate accepts, from the per-op switch of
# tensorflow/lite/tools/versioning/gpu_compatibility.cc. The TFLite analyzer's
# own GPU check became a no-op in TF 2.19 (tensorflow/tensorflow#77042: it
# prints "compatible" for any model), so its text is recorded but the verdict
# comes from this list, the static-shape rule and MIRROR_PAD's mode.
GPU_DELEGATE_OPS = frozenset(
    """ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS
    CUMSUM DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU
    EMBEDDING_LOOKUP EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
    GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM
    MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU
    QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT
    SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP STRIDED_SLICE SUB SUM TANH TILE
    TRANSPOSE TRANSPOSE_CONV""".split()
)


def _analyzer_text(flatbuffer):
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    return captured.getvalue()


def _has_dynamic_input(flatbuffer):
    from ai_edge_litert import schema_py_generated as schema

    subgraph = schema.Model.GetRootAs(flatbuffer, 0).Subgraphs(0)
    for index in range(subgraph.InputsLength()):
        tensor = subgraph.Tensors(subgraph.Inputs(index))
        if any(tensor.ShapeSignature(axis) < 0 for axis in range(tensor.ShapeSignatureLength())):
            return True
    return False


def _mirror_pad_modes(flatbuffer):
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    modes = set()
    for index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(index)
        for op_index in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(op_index)
            code = model.OperatorCodes(op.OpcodeIndex())
            if (
                max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
                == schema.BuiltinOperator.MIRROR_PAD
            ):
                options = schema.MirrorPadOptions()
                table = op.BuiltinOptions()
                options.Init(table.Bytes, table.Pos)
                modes.add(
                    "REFLECT" if options.Mode() == schema.MirrorPadMode.REFLECT else "SYMMETRIC"
                )
    return modes


def _max_tensor_rank(flatbuffer):
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    return max(
        (
            model.Subgraphs(s).Tensors(t).ShapeLength()
            for s in range(model.SubgraphsLength())
            for t in range(model.Subgraphs(s).TensorsLength())
        ),
        default=0,
    )


def gpu_compatibility(flatbuffer):
    """Checks a model against the TFLite GPU delegate's op support.

    Args:
        flatbuffer: bytes of a `.tflite` model.

    Returns:
        `(compatible, issues, analyzer_text)`: the verdict (bool), a list of
        one-line reasons it is False (unsupported ops, dynamic input shape,
        symmetric mirror padding, tensors of more than 4 dimensions), and
        the GPU lines of the TFLite analyzer's output run with
        `gpu_compatibility=True`.
    """
    issues = [
        f"op {op} is not supported by the GPU delegate"
        for op in sorted(list_operators(flatbuffer))
        if op not in GPU_DELEGATE_OPS
    ]
    if "SYMMETRIC" in _mirror_pad_modes(flatbuffer):
        issues.append("MIRROR_PAD in SYMMETRIC mode (the GPU delegate supports REFLECT only)")
    if _has_dynamic_input(flatbuffer):
        issues.append("dynamic input shape (the GPU delegate needs static shapes)")
    rank = _max_tensor_rank(flatbuffer)
    if rank > 4:
        issues.append(f"{rank}-D tensors (the GPU delegate's kernels take 4-D tensors)")
    text = _analyzer_text(flatbuffer)
    analyzer = "\n".join(line.strip() for line in text.splitlines() if "GPU" in line)
    return not issues, issues, analyzer


def io_contract(generator):
    """Describes the input/output tensors of a `TFLiteGenerator`."""
    height, width = generator.input_size or (-1, -1)

    def tensor(name, quantization):
        entry = {
            "name": name,
            "shape": [1, height, width, 3],
            "dtype": generator.io_dtype.name,
            "layout": "NHWC, RGB",
            "range": "float [-1, 1] = pixel / 127.5 - 1",
        }
        if generator.io_dtype != np.float32:
            scale, zero_point = quantization
            entry["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
            entry["range"] = "quantized; float = scale * (q - zero_point), float in [-1, 1]"
        return entry

    return {
        "signature": SIGNATURE_KEY,
        "input": tensor(INPUT_NAME, generator.input_quantization),
        "output": tensor(OUTPUT_NAME, generator.output_quantization),
        "padding_contract": "height and width multiples of 4 (reflect-pad, run, crop)",
    }


def _psnrs(first, second):
    return [
        psnr(from_model_range(a), from_model_range(b)) for a, b in zip(first, second, strict=True)
    ]


def _mean_psnr(first, second):
    """Mean over the non-identical pairs; NaN (null in JSON) when every pair is identical."""
    return finite_mean(_psnrs(first, second))


def validate_tflite(
    flatbuffer,
    keras_model,
    blurred,
    sharp=None,
    quantization=None,
    latency_size=None,
    latency_repeats=5,
    thread_counts=(1, 2),
    reference_tflite=None,
):
    """Measures an exported model and returns its report.

    Args:
        flatbuffer: bytes of the `.tflite` model.
        keras_model: the generator it was converted from.
        blurred: list of float32 `(H, W, 3)` images in [-1, 1], of the
            model's input size (any multiple of 4 for dynamic models).
        sharp: list of the matching sharp images, or None when unknown.
        quantization: str, the variant's name, for the thresholds.
        latency_size: `(height, width)` for timing; defaults to the model's
            input size, or 256x256 for dynamic models.
        latency_repeats: int. Timed runs per thread count (median reported).
        thread_counts: thread counts to time with.
        reference_tflite: bytes of the fp32 model, to report the PSNR drop
            (against sharp) of a quantized model relative to fp32.

    Returns:
        dict, JSON-serialisable. `passed` is False when fp32 or fp16 fall
        below `MIN_PSNR_VS_KERAS`.
    """
    generator = TFLiteGenerator(flatbuffer)
    keras_outputs = [np.asarray(keras_model.predict_on_batch(image[None]))[0] for image in blurred]
    tflite_outputs = [generator.predict_on_batch(image[None])[0] for image in blurred]
    vs_keras = _psnrs(keras_outputs, tflite_outputs)
    report = {
        "quantization": quantization,
        "input_size": size_tag(generator.input_size),
        "size_bytes": len(flatbuffer),
        "num_validation_images": len(blurred),
        "validation_image_size": list(blurred[0].shape[:2]) if blurred else None,
        "psnr_vs_keras_db": finite_mean(vs_keras),
        # uint8 outputs equal to Keras' on every image: no PSNR exists (null in JSON).
        "identical_to_keras": all(math.isinf(value) for value in vs_keras),
        "max_abs_diff_vs_keras": float(
            max(np.max(np.abs(k - t)) for k, t in zip(keras_outputs, tflite_outputs, strict=True))
        ),
    }
    if sharp is not None:
        report["psnr_keras_vs_sharp_db"] = _mean_psnr(keras_outputs, sharp)
        report["psnr_tflite_vs_sharp_db"] = _mean_psnr(tflite_outputs, sharp)
        report["psnr_blurred_vs_sharp_db"] = _mean_psnr(blurred, sharp)
        if reference_tflite is not None:
            reference = TFLiteGenerator(reference_tflite)
            reference_outputs = [reference.predict_on_batch(image[None])[0] for image in blurred]
            fp32_vs_sharp = _mean_psnr(reference_outputs, sharp)
            report["psnr_fp32_tflite_vs_sharp_db"] = fp32_vs_sharp
            report["psnr_drop_vs_fp32_db"] = fp32_vs_sharp - report["psnr_tflite_vs_sharp_db"]
    latency_size = latency_size or generator.input_size or DEFAULT_LATENCY_SIZE
    report["latency_ms"] = {
        f"{threads}_threads": measure_latency(flatbuffer, latency_size, threads, latency_repeats)
        for threads in thread_counts
    }
    report["latency_size"] = size_tag(latency_size)
    report["latency_runtime"] = "ai_edge_litert Interpreter, XNNPACK (CPU)"
    compatible, issues, analyzer = gpu_compatibility(flatbuffer)
    report["gpu_compatible"] = compatible
    report["gpu_issues"] = issues
    report["gpu_analyzer"] = analyzer
    report["ops"] = dict(sorted(list_operators(flatbuffer).items()))
    report["io"] = io_contract(generator)
    threshold = MIN_PSNR_VS_KERAS.get(quantization)
    report["min_psnr_vs_keras_db"] = threshold
    report["passed"] = (
        threshold is None or report["identical_to_keras"] or report["psnr_vs_keras_db"] >= threshold
    )
    return report


def report_path(tflite_path):
    """`out/generator_fp32_256x256.tflite` -> `out/generator_fp32_256x256.json`."""
    return os.path.splitext(os.fspath(tflite_path))[0] + ".json"
