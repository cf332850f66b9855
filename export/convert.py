"""Converting a DeblurGAN generator to a TFLite (LiteRT) flatbuffer.

The generator is written with `keras.ops` only, so every op has a TFLite
builtin kernel: the converter runs with `TFLITE_BUILTINS` (or
`TFLITE_BUILTINS_INT8` for full-integer models) and nothing else. A model
that would need Select TF ops (Flex) or custom ops is refused with a one-line
`ExportError`, and the finished flatbuffer is checked again by reading its
operator codes (`list_operators`), so a model that reaches a phone runs on
the stock runtime and its GPU delegate.

The model has one signature, `serving_default`, mapping the input tensor
`"blurred"` (float32 `(1, H, W, 3)` in [-1, 1]) to `"deblurred"` (same shape
and range). H and W are fixed (e.g. 256x256) or dynamic (`-1`, resized at run
time); either way they must be multiples of 4, the generator's padding
contract (`keras_deblur.inference.padding_for`).
"""

import collections
import logging
import os
import re
import tempfile

import tensorflow as tf

from keras_deblur.cli import first_line
from keras_deblur.inference import MIN_NETWORK_SIZE, SIZE_MULTIPLE
from keras_deblur.models.tflite_generator import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
IO_TYPES = ("float", "int8", "uint8")
WINOGRAD_MODES = ("auto", "on", "off")
# The fp32 model is the CPU (XNNPACK) float model. Winograd stores 16/9 the
# weights of each 3x3 conv (full generator: 45.6 -> 78.9 MB), so the variants
# chosen for size keep direct convs: dynamic-range (11.5 -> 21.0 MB), fp16
# (for the GPU delegate, whose convs have their own Winograd) and int8.
_WINOGRAD_AUTO = ("fp32",)

logger = logging.getLogger(__name__)


class ExportError(ValueError):
    """A one-line reason why a generator cannot be exported as asked."""


def parse_input_size(text):
    """Parses `"256x256"` (height x width) or `"dynamic"`.

    Returns:
        `(height, width)` or None for a dynamic-shape model.

    Raises:
        ExportError: not of that form, or sides that are not multiples of 4
            or smaller than 8 (the generator's padding contract).
    """
    text = str(text).strip().lower()
    if text == "dynamic":
        return None
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise ExportError(f"input size must be HEIGHTxWIDTH or 'dynamic'. Received: {text!r}")
    size = (int(match.group(1)), int(match.group(2)))
    check_input_size(size)
    return size


def check_input_size(size):
    """Raises `ExportError` unless both sides are multiples of 4 and >= 8."""
    if size is None:
        return
    if any(side % SIZE_MULTIPLE or side < MIN_NETWORK_SIZE for side in size):
        raise ExportError(
            f"model input sides must be multiples of {SIZE_MULTIPLE} and >= {MIN_NETWORK_SIZE} "
            f"(the generator's padding contract). Received: input_size={size[0]}x{size[1]}"
        )


def size_tag(size):
    """`(256, 256)` -> `"256x256"`, None -> `"dynamic"` (used in file names)."""
    return "dynamic" if size is None else f"{size[0]}x{size[1]}"


def check_generator_shapes(model, input_size, name="model"):
    """Checks that `model` maps `(1, H, W, 3)` to `(1, H, W, 3)` at this size.

    `keras_deblur.load_generator` checks channel counts; this also catches a
    model whose fixed input shape differs from the export size or whose
    output has another height/width.

    Raises:
        ExportError: one line naming `name`.
    """
    probe_size = input_size or (4 * MIN_NETWORK_SIZE, 4 * MIN_NETWORK_SIZE)
    declared = tuple(model.inputs[0].shape[1:3])
    if any(d is not None and d != p for d, p in zip(declared, probe_size, strict=True)):
        wanted = "dynamic" if input_size is None else size_tag(input_size)
        raise ExportError(
            f"{name}: the model's input is fixed to {declared[0]}x{declared[1]}, "
            f"which cannot be exported with input_size={wanted}"
        )
    import keras

    probe_shape = (1, *probe_size, 3)
    try:
        output_shape = tuple(model.compute_output_spec(keras.KerasTensor(probe_shape)).shape)
    except Exception as error:  # Shape errors come in many types; all mean "not a generator".
        raise ExportError(f"{name}: not a DeblurGAN generator ({first_line(error)})") from None
    if output_shape != probe_shape:
        raise ExportError(
            f"{name}: not a DeblurGAN generator (input {probe_shape} gives output "
            f"{output_shape}, expected the same shape)"
        )


def check_winograd_mode(winograd):
    """Raises `ExportError` unless `winograd` is one of `WINOGRAD_MODES`."""
    if winograd not in WINOGRAD_MODES:
        raise ExportError(f"winograd must be one of {WINOGRAD_MODES}. Received: {winograd!r}")


def uses_winograd(quantization, winograd="auto"):
    """Whether a `quantization` export computes 3x3 convs by Winograd F(2x2, 3x3).

    Args:
        quantization: one of `QUANTIZATIONS`.
        winograd: `"auto"` (fp32 models only: the others are chosen for size),
            `"on"` or `"off"`.

    Raises:
        ExportError: `winograd` is not one of `WINOGRAD_MODES`.
    """
    check_winograd_mode(winograd)
    if winograd == "auto":
        return quantization in _WINOGRAD_AUTO
    return winograd == "on"


def _write_saved_model(model, input_size, directory):
    """Writes a SavedModel whose only signature is blurred -> deblurred."""
    import keras

    height, width = input_size or (None, None)
    # Batch 1: a phone deblurs one photo at a time, and a fixed batch keeps
    # the GPU delegate on static shapes.
    spec = tf.TensorSpec((1, height, width, 3), tf.float32, name=INPUT_NAME)

    def serve(blurred):
        return {OUTPUT_NAME: model(blurred, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_KEY, serve, input_signature=[spec])
    archive.write_out(directory, verbose=False)


def _configure(converter, quantization, representative_dataset, io_type):
    if quantization not in QUANTIZATIONS:
        raise ExportError(
            f"quantization must be one of {QUANTIZATIONS}. Received: {quantization!r}"
        )
    if io_type not in IO_TYPES:
        raise ExportError(f"io_type must be one of {IO_TYPES}. Received: {io_type!r}")
    if io_type != "float" and quantization != "int8":
        raise ExportError(f"io_type={io_type} needs quantization=int8. Received: {quantization}")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if representative_dataset is None:
            raise ExportError("quantization=int8 needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type != "float":
            io_dtype = tf.int8 if io_type == "int8" else tf.uint8
            converter.inference_input_type = io_dtype
            converter.inference_output_type = io_dtype


def _instance_norm_nodes(calibrated):
    """Output tensor names of the ops inside InstanceNorm layers (`*_norm*` scopes)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(calibrated, 0)
    nodes = []
    for index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(index)
        for op_index in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(op_index)
            for output in range(op.OutputsLength()):
                name = subgraph.Tensors(op.Outputs(output)).Name().decode()
                if re.search(r"_norm(_\d+)*/", name):
                    nodes.append(name)
    return nodes


def _quantize_keeping_norms_float(converter):
    """int8 everywhere except InstanceNorm, which stays float32.

    InstanceNorm's mean, squared difference, variance and rsqrt have ranges
    that one int8 scale per tensor resolves badly (the squared deviations
    span several orders of magnitude). This is what
    `tf.lite.experimental.QuantizationDebugger.get_nondebug_quantized_model`
    does with `denylisted_nodes`, without building its TF interpreter: calibrate,
    then quantize all but the denylisted nodes. QUANTIZE/DEQUANTIZE ops (both
    builtins) convert at each norm's boundaries.
    """
    from tensorflow.lite.python import convert as tflite_convert

    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    return tflite_convert.mlir_quantize(
        calibrated,
        disable_per_channel=converter._experimental_disable_per_channel,
        fully_quantize=False,
        denylisted_nodes=_instance_norm_nodes(calibrated),
    )


def _converter_failure(error, name):
    """Turns the converter's multi-page MLIR dump into one line."""
    text = str(error)
    select = re.search(r"TF Select ops: ([^\n]+)", text)
    if select or "ERROR_NEEDS_FLEX_OPS" in text:
        ops = select.group(1).strip() if select else "unknown"
        return ExportError(
            f"{name}: the model needs Select TF ops ({ops}), which stock TFLite/LiteRT and its "
            "GPU delegate lack; only TFLite builtin ops are allowed"
        )
    custom = re.search(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op", text)
    if custom or "ERROR_NEEDS_CUSTOM_OPS" in text:
        op = custom.group(1) if custom else "unknown"
        return ExportError(
            f"{name}: the model needs an op with no TFLite builtin kernel ({op}); only TFLite "
            "builtin ops are allowed"
        )
    first = next((line for line in text.splitlines() if "error:" in line), text.splitlines()[0])
    return ExportError(f"{name}: TFLite conversion failed ({first.strip()[:300]})")


def convert_generator(
    model,
    quantization="fp32",
    input_size=(256, 256),
    representative_dataset=None,
    io_type="float",
    float_norm=False,
    optimize_graph=True,
    winograd="auto",
    name="model",
):
    """Converts a generator to a TFLite flatbuffer with builtin ops only.

    By default the converted graph is `export.xnnpack_graph.rewrite_for_xnnpack`
    of the model: the same function with reflection padding, transposed
    convs and (fp32) 3x3 convs expressed in ops that XNNPACK runs
    fast. The validation against the original Keras model checks it.

    Args:
        model: `keras.Model` generator, `(batch, H, W, 3)` -> same, [-1, 1].
        quantization: str. `"fp32"` (no quantization), `"fp16"` (float16
            weights, float compute on CPU, half precision on GPU),
            `"dynamic"` (int8 weights, activations quantized on the fly) or
            `"int8"` (full-integer: int8 weights and activations, needs
            `representative_dataset`). Defaults to "fp32".
        input_size: `(height, width)`, multiples of 4, or None for a
            dynamic-shape model resized at run time. Defaults to (256, 256).
        representative_dataset: callable returning an iterator of
            `[float32 (1, H, W, 3)]` lists in [-1, 1], for int8 calibration
            (see `export.calibration.representative_dataset`).
        io_type: str. `"float"` (default): float32 input/output even for int8
            models; `"int8"` or `"uint8"`: quantized input/output tensors
            (int8 models only; scale and zero point in the tensor details).
        float_norm: bool. For int8: keep the InstanceNorm ops in float32
            (mixed int8/float model, float I/O) instead of full-integer.
            Defaults to False.
        optimize_graph: bool. Convert the XNNPACK-friendly rewrite of the
            model instead of its layers as they are. Defaults to True.
        winograd: `"auto"`, `"on"` or `"off"`: 3x3 stride-1 convs by
            Winograd F(2x2, 3x3) in the rewrite (`uses_winograd`). Ignored
            without `optimize_graph`. Defaults to "auto".
        name: str. Shown in error messages, e.g. the weights path.

    Returns:
        bytes: the `.tflite` flatbuffer.

    Raises:
        ExportError: one line, for bad arguments, a model that is not a
            generator, ops outside the TFLite builtins, or a failed conversion.
    """
    check_input_size(input_size)
    check_generator_shapes(model, input_size, name)
    if optimize_graph:
        from export.xnnpack_graph import rewrite_for_xnnpack

        model = rewrite_for_xnnpack(model, winograd=uses_winograd(quantization, winograd))
    with tempfile.TemporaryDirectory(prefix="keras_deblur_export_") as directory:
        _write_saved_model(model, input_size, directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory)
        _configure(converter, quantization, representative_dataset, io_type)
        if float_norm and (quantization != "int8" or io_type != "float"):
            raise ExportError("float_norm needs quantization=int8 with io_type=float")
        try:
            if float_norm:
                flatbuffer = _quantize_keeping_norms_float(converter)
            else:
                flatbuffer = converter.convert()
        except Exception as error:  # ConverterError, or MLIR failures of other types.
            raise _converter_failure(error, name) from None
    assert_builtin_only(flatbuffer, name)
    return flatbuffer


def list_operators(flatbuffer):
    """Counts the operators in a `.tflite` flatbuffer, by op code.

    Builtin ops are named as in the TFLite schema (`CONV_2D`, `MEAN`, ...);
    custom ops (including Select TF "Flex" ops) as `CUSTOM:<custom code>`.

    Args:
        flatbuffer: bytes of a `.tflite` file, or its path.

    Returns:
        `collections.Counter` mapping op name to the number of uses.
    """
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(flatbuffer, (str, os.PathLike)):
        with open(flatbuffer, "rb") as file:
            flatbuffer = file.read()
    model = schema.Model.GetRootAs(flatbuffer, 0)
    builtin_names = {
        value: key for key, value in vars(schema.BuiltinOperator).items() if key.isupper()
    }
    code_names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        # Old files keep codes < 127 in the deprecated byte field only.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            custom = custom.decode() if isinstance(custom, bytes) else str(custom)
            code_names.append(f"CUSTOM:{custom}")
        else:
            code_names.append(builtin_names.get(builtin, f"UNKNOWN_{builtin}"))
    counts = collections.Counter()
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for op_index in range(subgraph.OperatorsLength()):
            counts[code_names[subgraph.Operators(op_index).OpcodeIndex()]] += 1
    return counts


def assert_builtin_only(flatbuffer, name="model"):
    """Raises `ExportError` if the flatbuffer holds any custom or Flex op."""
    foreign = sorted(
        op for op in list_operators(flatbuffer) if op.startswith(("CUSTOM", "UNKNOWN"))
    )
    if foreign:
        raise ExportError(f"{name}: the TFLite model contains non-builtin ops {foreign}")
