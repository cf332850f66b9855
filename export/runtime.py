"""Running an exported generator with LiteRT (`ai_edge_litert`).

`TFLiteGenerator` lives in `keras_deblur.models.tflite_generator` (so
`load_generator("G.tflite")` and `keras_deblur.inference.deblur` take
`.tflite` files); it is re-exported here beside the latency measurement.
"""

import time

import numpy as np

from keras_deblur.models.tflite_generator import TFLiteGenerator

__all__ = ["TFLiteGenerator", "measure_latency"]


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
