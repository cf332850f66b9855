"""Loading a saved generator with errors that name the file."""

import os
import warnings
import zipfile

from keras_deblur.cli import first_line
from keras_deblur.models.tflite_generator import TFLiteGenerator
from keras_deblur.pretrained import PRESETS, preset_path


def weight_shapes(layer):
    """The shapes of a layer's or model's weights, in order: what must match to copy them."""
    return [tuple(w.shape) for w in layer.weights]


def _check_generator(model, path):
    inputs, outputs = model.inputs, model.outputs
    if (
        len(inputs) != 1
        or len(outputs) != 1
        or tuple(inputs[0].shape[-1:]) != (3,)
        or tuple(outputs[0].shape[-1:]) != (3,)
        or len(inputs[0].shape) != 4
    ):
        shapes = [tuple(t.shape) for t in inputs], [tuple(t.shape) for t in outputs]
        raise ValueError(
            f"{path}: not a DeblurGAN generator (expected one (batch, height, width, 3) input "
            f"and output, found inputs/outputs {shapes[0]} -> {shapes[1]})"
        )


def load_generator(path, num_threads=None, **generator_kwargs):
    """Loads a pretrained generator by name, or a generator from a `.keras`/`.weights.h5`/`.tflite`
    file.

    A name from `keras_deblur.pretrained.PRESETS` (e.g. `"mobile"`) loads the
    generator shipped in the package, unless a file of that name exists.
    `.keras` files are loaded in safe mode (no Python code is deserialised).
    `.weights.h5` files hold weights only: the generator is rebuilt with
    `build_generator(**generator_kwargs)` and the weights loaded into it.
    `.tflite` files (any variant `python -m export.tflite` writes) give a
    `TFLiteGenerator` that `keras_deblur.inference.deblur` tiles like a Keras
    model.

    Args:
        path: str or path-like. Preset name, `.keras`, `.weights.h5` or
            `.tflite` file.
        num_threads: int or None. Threads of a `.tflite` model; None uses
            every CPU. Keras models use TensorFlow's thread settings.
        **generator_kwargs: arguments of `build_generator` for `.weights.h5`
            files saved from a non-default architecture.

    Returns:
        The generator, a `keras.Model` (or `TFLiteGenerator`) from
        `(batch, height, width, 3)` in [-1, 1] to the same shape in [-1, 1].

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: one line naming the file when it is not a generator or
            cannot be read.
    """
    path = os.fspath(path)
    if path in PRESETS and not os.path.exists(path):
        path = preset_path(path)
    if os.path.isdir(path):
        raise FileNotFoundError(f"{path}: is a folder, not a model file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.endswith(".tflite"):
        return TFLiteGenerator(path, num_threads=num_threads)
    if path.endswith(".weights.h5"):
        return _load_weights(path, generator_kwargs)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: expected a .keras, .weights.h5 or .tflite file")
    return _load_keras(path)


# Keras is imported by the two loaders below, not by this module: a `.tflite`
# generator runs without TensorFlow or Keras in the process (0.7 GB less memory).


def _load_weights(path, generator_kwargs):
    """A generator built with `build_generator(**generator_kwargs)`, weights from `path`."""
    from keras_deblur.models.generator import build_generator

    _check_hdf5(path)
    model = build_generator(**generator_kwargs)
    try:
        with warnings.catch_warnings():
            # Keras warns per missing layer before raising; the error says it once.
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(path)
    except Exception as error:  # Keras raises several types; all mean "wrong file".
        raise ValueError(
            f"{path}: weights do not fit the generator ({first_line(error)})"
        ) from None
    return model


def _load_keras(path):
    """The generator saved in the `.keras` file `path`, loaded in safe mode."""
    import keras

    import keras_deblur.layers  # noqa: F401  (registers the custom layers safe mode may load)

    _check_keras_archive(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        if "Lambda" in str(error):
            raise ValueError(
                f"{path}: refused in safe mode: it holds a Lambda layer (Python code); load it "
                "yourself with keras.saving.load_model(path, safe_mode=False) only if you trust it"
            ) from None
        raise ValueError(f"{path}: cannot load the model ({first_line(error)})") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path}: not a Keras model")
    _check_generator(model, path)
    return model


def _check_keras_archive(path):
    """A `.keras` file is a zip holding config.json; say which part is wrong before Keras
    does (Keras reports any unreadable archive as "File not found")."""
    size = os.path.getsize(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a .keras archive (not a zip file: {size:,} bytes, empty, truncated "
            "or another format)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()
    except Exception as error:  # BadZipFile, zlib.error, EOFError, NotImplementedError (an
        # unknown compression), RuntimeError (encrypted): all say the archive is damaged.
        raise ValueError(f"{path}: damaged .keras archive ({first_line(error)})") from None
    if damaged is not None:
        raise ValueError(f"{path}: damaged .keras archive ({damaged!r} fails its checksum)")
    if "config.json" not in names:
        raise ValueError(f"{path}: a zip archive without config.json, not a Keras model")


def _check_hdf5(path):
    with open(path, "rb") as file:
        signature = file.read(8)
    if signature != b"\x89HDF\r\n\x1a\n":
        raise ValueError(f"{path}: not an HDF5 weights file (wrong signature)")
