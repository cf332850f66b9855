"""The program that runs inside the emulated ARM64 Python (see `export.arm64_kernels`).

    python3.11 arm64_runner.py OUTPUTS.npz NUM_THREADS MODEL INPUTS.npy [MODEL INPUTS.npy ...]

Runs each float-I/O `.tflite` generator on its inputs (float32 `(N, H, W, 3)`)
with LiteRT's default CPU path, the one `export.runtime.TFLiteGenerator`
takes (`Interpreter`, XNNPACK delegate, one image at a time), and saves the
outputs in OUTPUTS.npz under "0", "1", ... in argument order.

It is run by path, not as part of the `export` package, because the emulated
sysroot has only numpy and ai_edge_litert (no TensorFlow, which the package
imports).
"""

import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def run_model(model_path, images, num_threads):
    """float32 `(N, H, W, 3)` outputs of a one-input, one-output `.tflite` signature."""
    runner = Interpreter(model_path=model_path, num_threads=num_threads).get_signature_runner()
    (input_name,) = runner.get_input_details()
    (output_name,) = runner.get_output_details()
    return np.concatenate([runner(**{input_name: image[None]})[output_name] for image in images])


def main(argv):
    output_path, num_threads, *pairs = argv
    if not pairs or len(pairs) % 2:
        sys.exit("usage: arm64_runner.py OUTPUTS.npz NUM_THREADS MODEL INPUTS.npy [...]")
    outputs = {
        str(index): run_model(model, np.load(inputs), int(num_threads))
        for index, (model, inputs) in enumerate(zip(pairs[::2], pairs[1::2], strict=True))
    }
    np.savez(output_path, **outputs)


if __name__ == "__main__":
    main(sys.argv[1:])
