"""Fuzzes `keras_deblur.data.images.read_image_and_header`: header, EXIF, ICC, then pixels.

Contract: an upright uint8/uint16 array within the pixel budget and its
header, or `ImageReadError` in one line naming the file. A header that was
read must survive `write_image` into PNG and JPEG (its ICC profile intact),
since every CLI writes its output with the input's header.

    python tests/fuzz/fuzz_read_image.py -max_total_time=600 corpus/read_image

The pixel budget is 4 megapixels here (not 120) so that each input decodes in
milliseconds; the budget logic is the same. Pillow's header parsers are
Python and coverage-guided; OpenCV's decoders are native and run blind.
"""

import io
import os

import atheris
import harness
import numpy as np

with atheris.instrument_imports(include=["keras_deblur.data", "PIL"]):
    from PIL import Image, ImageCms

    from keras_deblur.data.images import read_image_and_header, write_image

MAX_PIXELS = 1 << 22
_SCRATCH = harness.scratch_dir()
_INPUT = os.path.join(_SCRATCH, "input")
_OUTPUTS = [os.path.join(_SCRATCH, f"output{ext}") for ext in (".png", ".jpg")]
_TINY = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)


def one_input(data):
    harness.write(_INPUT, data)
    try:
        image, header = read_image_and_header(_INPUT, MAX_PIXELS)
    except harness.documented_errors("read_image") as error:
        harness.check_error(error, "read_image", (_INPUT,))
        return
    _check_image(image, header)
    if header is not None:
        _check_header_survives_writing(header)


def _check_image(image, header):
    assert isinstance(image, np.ndarray) and image.dtype in (np.uint8, np.uint16), image.dtype
    assert image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4)), image.shape
    assert image.shape[0] * image.shape[1] <= MAX_PIXELS, f"over the budget: {image.shape}"
    assert image.flags.c_contiguous
    if header is not None:
        assert 1 <= header.orientation <= 8 and header.frames >= 1, header
        assert header.display_size == image.shape[:2], (header, image.shape)


def _check_header_survives_writing(header):
    for path in _OUTPUTS:
        write_image(path, _TINY, header)
        image, written = read_image_and_header(path, MAX_PIXELS)
        assert image.shape == _TINY.shape, (path, image.shape)
        assert written is not None and written.orientation == 1, (path, written)
        if path.endswith(".png"):
            assert written.icc_profile == header.icc_profile, path


def seeds():
    """The hostile-file corpus plus small JPEG, PNG, WebP and TIFF files with EXIF and ICC."""
    import tempfile

    from fuzz_corpus import build_corpus

    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in build_corpus(folder):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                found[name.replace(" ", "_")] = open(path, "rb").read()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: stored sideways
    exif[0x010F] = "fuzz camera"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = Image.fromarray(np.kron(_TINY, np.ones((2, 2, 1), np.uint8)))
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")):
        buffer = io.BytesIO()
        rgb.save(buffer, fmt, exif=exif, icc_profile=icc)
        found[f"exif_icc.{ext}"] = buffer.getvalue()
    return found


if __name__ == "__main__":
    harness.main(one_input, seeds)
