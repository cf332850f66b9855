"""TFLite (LiteRT) export of the DeblurGAN generator, with validation.

Run `python -m export.tflite --help`. Library entry points:
`export.tflite.export_generator` (convert + validate + report; not imported
here so that `python -m export.tflite` runs cleanly), `convert_generator`,
`validate_tflite`, `TFLiteGenerator` (run a `.tflite` like a Keras model) and
`list_operators`.
"""

from export.convert import (
    QUANTIZATIONS,
    ExportError,
    assert_builtin_only,
    convert_generator,
    list_operators,
    parse_input_size,
)
from export.runtime import TFLiteGenerator, measure_latency
from export.validate import gpu_compatibility, validate_tflite

__all__ = [
    "QUANTIZATIONS",
    "ExportError",
    "TFLiteGenerator",
    "assert_builtin_only",
    "convert_generator",
    "gpu_compatibility",
    "list_operators",
    "measure_latency",
    "parse_input_size",
    "validate_tflite",
]
