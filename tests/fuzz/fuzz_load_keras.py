"""Fuzzes `keras_deblur.models.loading.load_generator` on a `.keras` file.

Contract: a `keras.Model` with one `(batch, height, width, 3)` input and one
output of 3 channels, or `FileNotFoundError`/`ValueError` in one line naming
the file (Keras is run in safe mode: no Python code is deserialised).

    python tests/fuzz/fuzz_load_keras.py -max_total_time=600 corpus/load_keras

A `.keras` file is a zip of `config.json`, `metadata.json` and
`model.weights.h5`. Byte mutations of a zip almost always break a checksum,
which the loader refuses before Keras sees the file; so the custom mutator
below mostly mutates one member and zips the archive again, which takes the
fuzzer into Keras's config deserialisation and the HDF5 weights. Seeds are
tiny models (a Keras load takes ~40 ms each; the shipped generator's 0.3 s
would leave too few executions).
"""

import io
import os
import random
import zipfile

import atheris
import harness

with atheris.instrument_imports(
    include=["keras_deblur", "keras.src.saving", "keras.src.models", "zipfile", "h5py"]
):
    import keras

    from keras_deblur import layers
    from keras_deblur.models.loading import load_generator

_PATH = os.path.join(harness.scratch_dir(), "model.keras")
# The mutator re-zips members only when they decompress to at most this.
_MAX_MEMBERS_BYTES = 1 << 20


def one_input(data):
    harness.write(_PATH, data)
    try:
        model = load_generator(_PATH)
    except harness.documented_errors("load_keras") as error:
        harness.check_error(error, "load_keras", (_PATH,))
        return
    assert isinstance(model, keras.Model), type(model)
    assert len(model.inputs) == 1 and len(model.outputs) == 1
    assert len(model.inputs[0].shape) == 4 and model.inputs[0].shape[-1] == 3
    assert model.outputs[0].shape[-1] == 3


def _members(data):
    """`{name: bytes}` of a zip, or None if `data` is not one we can re-zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if sum(info.file_size for info in infos) > _MAX_MEMBERS_BYTES:
                return None
            return {info.filename: archive.read(info) for info in infos}
    except Exception:  # a mutated zip fails in many ways; then mutate its bytes
        return None


def _zip(members, compression):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def mutate(data, max_size, seed):
    """Mutates one member of a zip and re-zips it (8 in 10), else the raw bytes."""
    rng = random.Random(seed)
    members = _members(data)
    if members is None or not members or rng.random() < 0.2:
        return atheris.Mutate(data, max_size)
    names = sorted(members)
    # config.json decides what Keras builds: mutate it most.
    weights = [4 if name == "config.json" else 1 for name in names]
    name = rng.choices(names, weights)[0]
    members[name] = atheris.Mutate(members[name], 2 * len(members[name]) + 64)
    if rng.random() < 0.05:
        del members[rng.choice(names)]
    compression = rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))
    mutated = _zip(members, compression)
    return mutated if len(mutated) <= max_size else atheris.Mutate(data, max_size)


def _seed_models():
    image = keras.Input((None, None, 3))
    plain = keras.Model(image, keras.layers.Conv2D(3, 1)(image))
    x = layers.ReflectionPadding2D(1)(image)
    x = keras.layers.Conv2D(4, 3)(x)
    x = layers.InstanceNormalization()(x)
    x = layers.DepthToSpace(2)(layers.SpaceToDepth(2)(x))
    x = keras.layers.Conv2D(3, 1)(x)
    ours = keras.Model(image, layers.GlobalSkip()([image, x]))
    gray = keras.Input((None, None, 1))
    not_a_generator = keras.Model(gray, keras.layers.Conv2D(2, 1)(gray))
    code = keras.Model(image, keras.layers.Lambda(lambda t: t * 2)(image))
    return {"plain": plain, "our_layers": ours, "not_a_generator": not_a_generator, "code": code}


def seeds():
    """Tiny `.keras` models (ours, plain, a non-generator, a Lambda) and broken archives."""
    import tempfile

    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, model in _seed_models().items():
            path = os.path.join(folder, f"{name}.keras")
            model.save(path)
            with open(path, "rb") as file:
                members = _members(file.read())
            found[f"{name}.keras"] = _zip(members, zipfile.ZIP_DEFLATED)
    members = _members(found["plain.keras"])
    found["no_config.keras"] = _zip({"metadata.json": members["metadata.json"]}, zipfile.ZIP_STORED)
    found["truncated.keras"] = found["plain.keras"][:200]
    return found


if __name__ == "__main__":
    harness.main(one_input, seeds, custom_mutator=mutate)
