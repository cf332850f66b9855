"""Fuzzes `keras_deblur.validation.manifest.load_manifest`: a validation_set.json and kernels.

Contract: a manifest with the layout the module docstring documents (every
sample's photo listed, its window inside that photo, its id a plain file name
since `pairs.materialise` writes `<id>_blurred.png`, its kernel a square
finite array), or `FileNotFoundError`/`ValueError` in one line naming the
manifest or its kernels file.

    python tests/fuzz/fuzz_manifest.py -max_total_time=600 corpus/manifest

An input is the JSON, optionally followed by `SEPARATOR` and the bytes of the
kernels `.npz`; without one, the seeds' valid kernels are used, so most of
the effort goes to the JSON the structural mutator changes.
"""

import io
import json
import os
import random

import atheris
import harness
import numpy as np

with atheris.instrument_imports(include=["keras_deblur.validation", "numpy.lib", "zipfile"]):
    from keras_deblur.validation.manifest import CLASSES, kernels_path, load_manifest

SEPARATOR = b"\n--kernels.npz--\n"
_PATH = os.path.join(harness.scratch_dir(), "validation_set.json")
_KERNELS = kernels_path(_PATH)


def _square(size, seed):
    kernel = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    return kernel / kernel.sum()


def _npz(kernels):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **kernels)
    return buffer.getvalue()


def _seed_manifest():
    photos = [
        {"name": "a.png", "sha256": "0" * 64, "height": 300, "width": 400, "defocus": False},
        {"name": "b.png", "sha256": "1" * 64, "height": 260, "width": 260, "defocus": True},
    ]
    samples, kernels = [], {}
    for index, name in enumerate(CLASSES):
        photo = photos[index % 2]
        kernel = f"{name}_000" if name in ("short", "long") else None
        if kernel:
            kernels[kernel] = _square(3 + 2 * index, index)
        samples.append(
            {
                "id": f"{name}_000",
                "photo": photo["name"],
                "class": name,
                "window": [index, 2 * index, 200, 200],
                "whole": False,
                "kernel": kernel,
            }
        )
    manifest = {"format": 1, "seed": 0, "crop_size": 256, "crops_per_class": 1}
    return {**manifest, "photos": photos, "samples": samples}, kernels


_DOCUMENT, _VALID_KERNELS = _seed_manifest()
_VALID_NPZ = _npz(_VALID_KERNELS)


def one_input(data):
    document, separator, npz = data.partition(SEPARATOR)
    harness.write(_PATH, document)
    harness.write(_KERNELS, npz if separator else _VALID_NPZ)
    try:
        manifest = load_manifest(_PATH)
    except harness.documented_errors("manifest") as error:
        harness.check_error(error, "manifest", (_PATH, _KERNELS))
        return
    _check_layout(manifest)


def _is_int(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_layout(manifest):
    assert manifest["format"] == 1
    sizes = {}
    for photo in manifest["photos"]:
        assert isinstance(photo["name"], str) and isinstance(photo["sha256"], str), photo
        assert _is_int(photo["height"], 1) and _is_int(photo["width"], 1), photo
        assert isinstance(photo["defocus"], bool), photo
        sizes[photo["name"]] = photo["height"], photo["width"]
    for sample in manifest["samples"]:
        assert isinstance(sample["id"], str) and sample["id"] not in ("", ".", ".."), sample
        assert not any(c in sample["id"] for c in "/\\\0"), sample
        assert sample["class"] in CLASSES and isinstance(sample["whole"], bool), sample
        top, left, height, width = sample["window"]
        assert _is_int(top, 0) and _is_int(left, 0), sample
        assert _is_int(height, 1) and _is_int(width, 1), sample
        photo_height, photo_width = sizes[sample["photo"]]
        assert top + height <= photo_height and left + width <= photo_width, sample
        if sample["kernel"] is not None:
            kernel = manifest["kernels"][sample["kernel"]]
            assert kernel.dtype == np.float32 and kernel.ndim == 2, kernel.shape
            assert kernel.shape[0] == kernel.shape[1] >= 1 and np.isfinite(kernel).all()


def mutate(data, max_size, seed):
    """The JSON part mutated structurally (8 in 10, kernels kept), else the raw bytes."""
    document, separator, npz = data.partition(SEPARATOR)
    if random.Random(seed).random() < 0.2:
        return atheris.Mutate(data, max_size)
    tail = separator + npz
    return harness.json_mutator(document, max(max_size - len(tail), 1), seed) + tail


def seeds():
    """A small valid manifest with and without its kernels, the shipped one's first lines."""
    document = json.dumps(_DOCUMENT, indent=1).encode()
    bad_kernels = {"short_000": np.ones((2, 3), np.float32), "long_000": np.array([np.nan])}
    return {
        "small.json": document,
        "small_with_kernels.json": document + SEPARATOR + _VALID_NPZ,
        "odd_kernels.json": document + SEPARATOR + _npz(bad_kernels),
        "truncated_kernels.json": document + SEPARATOR + _VALID_NPZ[:150],
        "list.json": b"[]",
        "format_2.json": b'{"format": 2, "photos": [], "samples": []}',
    }


if __name__ == "__main__":
    harness.main(one_input, seeds, custom_mutator=mutate)
