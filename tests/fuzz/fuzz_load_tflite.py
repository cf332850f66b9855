"""Fuzzes `TFLiteGenerator` (keras_deblur.models.tflite_generator) loading a flatbuffer from bytes.

Contract: a generator whose input size is None or two positive ints and whose
I/O dtype is float32, int8 or uint8, or `ValueError` in one line. Only the
loading (our index check, LiteRT's flatbuffer verifier, the signature checks) is fuzzed, not
running the graph: LiteRT's kernels are not hardened against hostile models,
so a `.tflite` file is to be trusted like code (see README).

    python tests/fuzz/fuzz_load_tflite.py -max_total_time=600 corpus/load_tflite

LiteRT is native: coverage guidance sees only the Python around it. Inputs that
once crashed LiteRT itself are kept in `native_crashes/load_tflite/`.
"""

import os

import atheris
import harness
import numpy as np

# The index check is Python reading hostile bytes: coverage-guided with the loader.
_OURS = ["keras_deblur.models.tflite_generator", "keras_deblur.models.tflite_structure"]
with atheris.instrument_imports(include=_OURS):
    from keras_deblur.models.tflite_generator import TFLiteGenerator

_NAME = "TFLite model bytes"


def one_input(data):
    try:
        generator = TFLiteGenerator(data)
    except harness.documented_errors("load_tflite") as error:
        harness.check_error(error, "load_tflite", (_NAME,))
        return
    size = generator.input_size
    assert size is None or (len(size) == 2 and min(size) >= 1), size
    assert generator.io_dtype in (np.float32, np.int8, np.uint8), generator.io_dtype


SEEDS = os.path.join(harness.HERE, "seeds", "load_tflite")


def seeds():
    """The committed seeds (converting them takes a minute), else `converted_seeds()`."""
    if os.path.isdir(SEEDS):
        return {name: open(os.path.join(SEEDS, name), "rb").read() for name in os.listdir(SEEDS)}
    return converted_seeds()


def converted_seeds():
    """Tiny generators converted as fixed-size fp32, dynamic-size and int8 models.

    The files in `SEEDS` are its output, kept so that a run need not convert.
    """
    import keras

    from export.convert import convert_generator
    from keras_deblur import layers

    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(3, 3, padding="same")(layers.SpaceToDepth(2)(image)[..., :3])
    model = keras.Model(image, layers.GlobalSkip()([image, keras.layers.UpSampling2D(2)(x)]))

    def calibration():
        for seed in range(2):
            yield [np.random.default_rng(seed).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)]

    return {
        "fixed_fp32.tflite": convert_generator(model, input_size=(8, 8)),
        "dynamic_fp32.tflite": convert_generator(model, input_size=None),
        "int8.tflite": convert_generator(
            model, "int8", (8, 8), representative_dataset=calibration, io_type="int8"
        ),
        "not_a_model.tflite": b"TFL3" + bytes(60),
    }


if __name__ == "__main__":
    harness.main(one_input, seeds)
