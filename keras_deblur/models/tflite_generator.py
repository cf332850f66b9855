"""A `.tflite` (LiteRT) generator behind the same inference contract as a Keras one.

`TFLiteGenerator` hides what differs between the files `python -m
export.tflite` writes: fixed or dynamic input shape, float or quantized
(int8/uint8) input and output, and the thread count. It has
`predict_on_batch` and an `input_shape` like a Keras model, so
`keras_deblur.inference.deblur` pads and tiles it like the Keras generator
(in tiles of the model's own size when that is fixed), and
`keras_deblur.models.load_generator("G.tflite")` returns one: the deblur and
evaluate CLIs take either kind of file.
"""

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from keras_deblur.cli import first_line
from keras_deblur.models.tflite_structure import structure_problem

# The export's I/O contract (export/README.md): one signature mapping a float32
# (1, H, W, 3) image in [-1, 1] to the same shape and range.
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "blurred"
OUTPUT_NAME = "deblurred"


# What LiteRT raises for a file it cannot use: its verifier, its signature reader
# (a name that is not UTF-8) or tensors it cannot allocate.
_LITERT_ERRORS = (ValueError, RuntimeError, UnicodeDecodeError)
# Input/output tensor types the export writes.
_IO_DTYPES = (np.float32, np.int8, np.uint8)


def default_num_threads():
    """All the CPUs this process may run on."""
    return os.cpu_count() or 1


class TFLiteGenerator:
    """A `.tflite` generator behind a Keras-like `predict_on_batch`.

    Any model with one signature (or `serving_default`) taking one 4-D NHWC
    3-channel image to one such image is accepted; the export names them
    `blurred` -> `deblurred`.

    Args:
        model: str path of a `.tflite` file, or its bytes.
        num_threads: int or None. XNNPACK threads; None uses every CPU
            (`os.cpu_count()`).

    Attributes:
        input_size: `(height, width)`, or None for a dynamic-shape model.
        input_shape: `(None, height, width, 3)` like a Keras model's, with
            None sides for a dynamic-shape model.
        io_dtype: numpy dtype of the input tensor (float32, int8 or uint8).
        input_quantization, output_quantization: `(scale, zero_point)` of
            quantized input/output tensors, `(0.0, 0)` for float ones.
        num_threads: int. The threads it runs with.

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file, when it is not a TFLite model
            or not an image-to-RGB-image model.

    Example:
    >>> sharp = deblur(TFLiteGenerator("generator_int8_256x256.tflite"), photo)
    """

    def __init__(self, model, num_threads=None):
        self.num_threads = default_num_threads() if num_threads is None else int(num_threads)
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1. Received: {num_threads}")
        if isinstance(model, (str, os.PathLike)):
            self.name = os.fspath(model)
            if not os.path.isfile(self.name):
                raise FileNotFoundError(f"{self.name}: no such file")
            with open(self.name, "rb") as file:
                content = file.read()
        else:
            self.name = "TFLite model bytes"
            content = bytes(model)
        # LiteRT segfaults on some indices that point nowhere: checked first.
        problem = structure_problem(content)
        if problem:
            raise ValueError(f"{self.name}: not a readable TFLite model ({problem})")
        try:
            self._interpreter = Interpreter(model_content=content, num_threads=self.num_threads)
            signatures = self._interpreter.get_signature_list()
        except _LITERT_ERRORS as error:
            raise self._unreadable(error) from None
        key, self._input_name, self._output_name = self._signature_names(signatures)
        try:
            self._runner = self._interpreter.get_signature_runner(key)
            input_details = self._runner.get_input_details()[self._input_name]
            output_details = self._runner.get_output_details()[self._output_name]
        except _LITERT_ERRORS as error:
            raise self._unreadable(error) from None
        self._check_image_tensor("input", input_details)
        self._check_image_tensor("output", output_details)
        signature = input_details["shape_signature"]
        self.input_size = None if min(signature[1:3]) < 0 else tuple(int(s) for s in signature[1:3])
        self.input_shape = (None, *(self.input_size or (None, None)), 3)
        self.io_dtype = np.dtype(input_details["dtype"])
        self._output_dtype = np.dtype(output_details["dtype"])
        self.input_quantization = tuple(input_details["quantization"])
        self.output_quantization = tuple(output_details["quantization"])

    def _unreadable(self, error):
        """LiteRT's error, which never names the file, as one line that does."""
        return ValueError(f"{self.name}: not a readable TFLite model ({first_line(error)})")

    def _signature_names(self, signatures):
        """`(signature key, input name, output name)` of the one image-to-image signature."""
        key = SIGNATURE_KEY if SIGNATURE_KEY in signatures else None
        if key is None and len(signatures) == 1:
            key = next(iter(signatures))
        if key is None:
            raise ValueError(
                f"{self.name}: not a DeblurGAN generator (expected one signature or "
                f"{SIGNATURE_KEY!r}, found {sorted(signatures)})"
            )
        names = signatures[key]
        if len(names["inputs"]) != 1 or len(names["outputs"]) != 1:
            raise ValueError(
                f"{self.name}: not a DeblurGAN generator (signature {key!r} has inputs "
                f"{names['inputs']} and outputs {names['outputs']}, expected one of each)"
            )
        return key, names["inputs"][0], names["outputs"][0]

    def _check_image_tensor(self, role, details):
        shape = tuple(int(s) for s in details["shape_signature"])
        dtype = np.dtype(details["dtype"])
        bad_side = len(shape) == 4 and any(side == 0 or side < -1 for side in shape[1:3])
        if len(shape) != 4 or shape[3] != 3 or bad_side or dtype not in _IO_DTYPES:
            raise ValueError(
                f"{self.name}: not a DeblurGAN generator (expected a (1, height, width, 3) "
                f"float32/int8/uint8 {role}, found {shape} {dtype.name})"
            )

    def _quantize(self, images):
        if self.io_dtype == np.float32:
            return images
        scale, zero_point = self.input_quantization
        info = np.iinfo(self.io_dtype)
        levels = np.rint(images / scale + zero_point)
        return np.clip(levels, info.min, info.max).astype(self.io_dtype)

    def _dequantize(self, outputs):
        if self._output_dtype == np.float32:
            return outputs
        scale, zero_point = self.output_quantization
        return (outputs.astype(np.float32) - zero_point) * scale

    def predict_on_batch(self, images):
        """Deblurs a batch of float images.

        Args:
            images: float32 `(batch, H, W, 3)` in [-1, 1]. H and W must equal
                the model's input size, or for a dynamic model be multiples
                of 4 (use `keras_deblur.inference.deblur` for other sizes).

        Returns:
            float32 `(batch, H, W, 3)` in [-1, 1].
        """
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (batch, height, width, 3). Received: {images.shape}")
        size = images.shape[1:3]
        if self.input_size is not None and tuple(size) != self.input_size:
            raise ValueError(
                f"this TFLite model takes {self.input_size[0]}x{self.input_size[1]} inputs; "
                f"tile or pad the image. Received: {size[0]}x{size[1]}"
            )
        if size[0] % 4 or size[1] % 4:
            raise ValueError(f"height and width must be multiples of 4. Received: {size}")
        # The signature runner resizes dynamic inputs to each image's shape
        # (a no-op when the shape is unchanged, as for equal tiles).
        outputs = [
            self._runner(**{self._input_name: self._quantize(image[None])})[self._output_name]
            for image in images
        ]
        return self._dequantize(np.concatenate(outputs, axis=0))

    __call__ = predict_on_batch
