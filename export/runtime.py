"""Running an exported generator with LiteRT (`ai_edge_litert`).

`TFLiteGenerator` hides the three things that differ between exported
variants: fixed or dynamic input shape, float or quantized input/output, and
the thread count. It has a `predict_on_batch` method, so
`keras_deblur.inference.deblur(TFLiteGenerator(path), photo)` deblurs photos
of any size through the same padding (to multiples of 4) and tiling as the
Keras model.
"""

import os
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from export.convert import INPUT_NAME, OUTPUT_NAME, SIGNATURE_KEY

_IO_DTYPES = (np.float32, np.int8, np.uint8)


def _unusable(source, error):
    """LiteRT's error (often several lines, never the file) as one line naming `source`."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return ValueError(f"{source}: not a usable TFLite model ({lines[0][:300]})")


class TFLiteGenerator:
    """A `.tflite` generator behind a Keras-like `predict_on_batch`.

    Args:
        model: str path of a `.tflite` file, or its bytes.
        num_threads: int. XNNPACK threads. Defaults to 1.

    Raises:
        FileNotFoundError: no file at the path.
        ValueError: one line naming the file ("TFLite model bytes" for bytes):
            not a TFLite flatbuffer, or not a keras-deblur generator. Only
            loading is checked; run only `.tflite` files you trust, since
            LiteRT's kernels are not hardened against hostile graphs.

    Attributes:
        input_size: `(height, width)`, or None for a dynamic-shape model.
        io_dtype: numpy dtype of the input/output tensors (float32, int8 or
            uint8).
        input_quantization, output_quantization: `(scale, zero_point)` of
            quantized input/output tensors, `(0.0, 0)` for float ones.
    """

    def __init__(self, model, num_threads=1):
        is_path = isinstance(model, (str, os.PathLike))
        source = os.fspath(model) if is_path else "TFLite model bytes"
        if is_path and not os.path.isfile(model):
            raise FileNotFoundError(f"{source}: no such file")
        try:
            if is_path:
                self._interpreter = Interpreter(model_path=source, num_threads=num_threads)
            else:
                self._interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
            signatures = self._interpreter.get_signature_list()
        except (ValueError, RuntimeError) as error:  # LiteRT's verifier and signature reader
            raise _unusable(source, error) from None
        if signatures.get(SIGNATURE_KEY) != {"inputs": [INPUT_NAME], "outputs": [OUTPUT_NAME]}:
            raise ValueError(
                f"{source}: not a keras-deblur TFLite generator: expected signature "
                f"{SIGNATURE_KEY} {INPUT_NAME} -> {OUTPUT_NAME}. Received: {signatures}"
            )
        try:
            self._runner = self._interpreter.get_signature_runner(SIGNATURE_KEY)
            input_details = self._runner.get_input_details()[INPUT_NAME]
            output_details = self._runner.get_output_details()[OUTPUT_NAME]
        except (ValueError, RuntimeError) as error:  # e.g. tensors that cannot be allocated
            raise _unusable(source, error) from None
        signature = input_details["shape_signature"]
        self.io_dtype = np.dtype(input_details["dtype"])
        if (
            len(signature) != 4
            or signature[3] != 3
            or any(side == 0 or side < -1 for side in signature[1:3])  # -1: dynamic
            or self.io_dtype not in _IO_DTYPES
        ):
            raise ValueError(
                f"{source}: not a keras-deblur TFLite generator: input {list(signature)} "
                f"{self.io_dtype}, expected (batch, height, width, 3) float32, int8 or uint8"
            )
        self.input_size = None if min(signature[1:3]) < 0 else tuple(int(s) for s in signature[1:3])
        self.input_quantization = tuple(input_details["quantization"])
        self.output_quantization = tuple(output_details["quantization"])
        self.num_threads = num_threads

    def _quantize(self, images):
        if self.io_dtype == np.float32:
            return images
        scale, zero_point = self.input_quantization
        info = np.iinfo(self.io_dtype)
        levels = np.rint(images / scale + zero_point)
        return np.clip(levels, info.min, info.max).astype(self.io_dtype)

    def _dequantize(self, outputs):
        if self.io_dtype == np.float32:
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
        # The signature runner resizes dynamic inputs to each image's shape.
        outputs = [
            self._runner(**{INPUT_NAME: self._quantize(image[None])})[OUTPUT_NAME]
            for image in images
        ]
        return self._dequantize(np.concatenate(outputs, axis=0))

    __call__ = predict_on_batch


def measure_latency(model, input_size, num_threads=1, repeats=5, warmup=1):
    """Median wall time of one inference, in milliseconds.

    Args:
        model: path or bytes of a `.tflite` generator.
        input_size: `(height, width)` to run at (a dynamic model is resized).
        num_threads: int. XNNPACK threads.
        repeats: int. Timed runs; the median is returned.
        warmup: int. Untimed runs first (XNNPACK packs weights on the first).

    Returns:
        float: milliseconds.
    """
    generator = TFLiteGenerator(model, num_threads=num_threads)
    images = np.random.default_rng(0).uniform(-1, 1, (1, *input_size, 3)).astype(np.float32)
    for _ in range(warmup):
        generator.predict_on_batch(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generator.predict_on_batch(images)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)
