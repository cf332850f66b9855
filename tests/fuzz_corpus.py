"""A corpus of hostile and unusual image files, built at test time.

`build_corpus(folder)` writes every case and returns `{file name: expected}`,
where expected is `"ok"` (decodes to a usable picture), `"tiny"` (decodes,
but is too small to deblur) or `"bad"` (must be refused in one line).
"""

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

from keras_deblur.data.images import write_image


def _photo(height=60, width=100, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    return np.kron(base, np.ones((4, 4, 1), np.uint8))[:height, :width]


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=100_000, height=100_000):
    """A few hundred bytes whose header claims `width` x `height` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def rotated_jpeg(image, orientation=6):
    """JPEG bytes of `image` as stored, tagged with an EXIF orientation and an ICC profile."""
    from PIL import ImageCms

    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "keras-deblur test camera"  # Make: must survive the round trip
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=95, exif=exif, icc_profile=icc)
    return buffer.getvalue()


def _save(path, image, **options):
    Image.fromarray(image).save(path, **options)


def build_corpus(folder):
    """Writes the corpus into `folder`; returns `{file name: "ok" | "tiny" | "bad"}`."""
    os.makedirs(folder, exist_ok=True)
    photo = _photo()
    path = lambda name: os.path.join(folder, name)  # noqa: E731
    cases = {}

    def case(name, expected, data=None):
        if data is not None:
            with open(path(name), "wb") as file:
                file.write(data)
        cases[name] = expected

    case("zero bytes.png", "bad", b"")
    case("text named.png", "bad", b"this is not a PNG, it is a text file\n")
    write_image(path("whole.png"), photo)
    write_image(path("whole.jpg"), photo)
    case("truncated.png", "bad", open(path("whole.png"), "rb").read()[:400])
    case("truncated.jpg", "bad", open(path("whole.jpg"), "rb").read()[:300])
    os.remove(path("whole.png"))
    os.remove(path("whole.jpg"))
    write_image(path("one_by_one.png"), photo[:1, :1])
    case("one_by_one.png", "tiny")
    write_image(path("one_by_n.png"), photo[:1, :40])
    case("one_by_n.png", "tiny")
    write_image(path("gray16.png"), (photo[..., 0].astype(np.uint16) * 257))
    case("gray16.png", "ok")
    write_image(path("rgb16.png"), photo.astype(np.uint16) * 257)
    case("rgb16.png", "ok")
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    write_image(path("rgba.png"), rgba)
    case("rgba.png", "ok")
    Image.fromarray(photo).convert("P").save(path("palette_transparent.png"), transparency=0)
    case("palette_transparent.png", "ok")
    Image.fromarray(photo).convert("CMYK").save(path("cmyk.jpg"), quality=95)
    case("cmyk.jpg", "ok")
    _save(path("progressive.jpg"), photo, quality=90, progressive=True)
    case("progressive.jpg", "ok")
    frames = [Image.fromarray(_photo(seed=seed)) for seed in range(3)]
    frames[0].save(path("animated.gif"), save_all=True, append_images=frames[1:])
    case("animated.gif", "ok")
    frames[0].save(path("animated.webp"), save_all=True, append_images=frames[1:], lossless=True)
    case("animated.webp", "ok")
    Image.fromarray(photo[..., 0].astype(np.float32) / 255).save(path("float.tif"))
    case("float.tif", "bad")
    case("bomb.png", "bad", bomb_png())
    case("exif rotated.jpg", "ok", rotated_jpeg(photo))
    write_image(path("name with spaces.png"), photo)
    case("name with spaces.png", "ok")
    write_image(path("fotografía 写真.png"), photo)
    case("fotografía 写真.png", "ok")
    os.symlink("loop.png", path("loop.png"))  # points at itself
    case("loop.png", "bad")
    os.makedirs(path("nested"), exist_ok=True)
    os.symlink("..", path(os.path.join("nested", "up")))  # a folder loop os.walk must not follow
    return cases
