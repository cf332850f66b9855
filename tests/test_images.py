import os

import numpy as np
import pytest
from fuzz_corpus import bomb_png, rotated_jpeg
from PIL import Image, ImageOps

from keras_deblur.data import images
from keras_deblur.data.image_metadata import ORIENTATION_TAG, exif_upright
from keras_deblur.data.images import (
    ImageReadError,
    list_images,
    read_image,
    read_image_and_header,
    to_rgb_uint8,
    write_image,
)


def test_write_then_read_keeps_rgb_order_gray_and_16_bit(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red only: a BGR/RGB mix-up would show up in channel 2
    write_image(tmp_path / "rgb.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    wide = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    write_image(tmp_path / "sub" / "wide.png", wide)
    assert read_image(tmp_path / "sub" / "wide.png").dtype == np.uint16


@pytest.mark.parametrize(
    "content,message",
    [(b"", "empty file"), (b"not an image", "not a readable image")],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"bad.png: {message}") as info:
        read_image(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_to_rgb_uint8_handles_gray_rgba_and_16_bit():
    gray = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(gray), [[[0, 0, 0], [255, 255, 255]]])
    rgba = np.full((1, 1, 4), 7, np.uint8)
    assert to_rgb_uint8(rgba).shape == (1, 1, 3)
    wide = np.array([[0, 128, 129, 65535]], np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(wide)[0, :, 0], [0, 0, 1, 255])


def test_list_images_from_folder_and_glob(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.rsplit("/", 1)[1] for p in list_images(str(tmp_path))] == ["a.jpg", "b.png"]
    assert len(list_images(str(tmp_path / "*.png"))) == 1
    with pytest.raises(FileNotFoundError, match="no image files"):
        list_images(str(tmp_path / "*.bmp"))


def _png_with_orientation(path, image, orientation):
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(image).save(path, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    _png_with_orientation(tmp_path / "o.png", stored, orientation)
    with Image.open(tmp_path / "o.png") as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), expected)


def test_pixel_budget_is_checked_from_the_header_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(100_000, 100_000))
    claim = r"bomb.png: header claims 10,000,000,000 pixels"
    with pytest.raises(ImageReadError, match=claim) as info:
        read_image(tmp_path / "bomb.png")
    assert "120,000,000-pixel budget" in str(info.value) and "\n" not in str(info.value)
    write_image(tmp_path / "small.png", np.zeros((10, 20, 3), np.uint8))
    with pytest.raises(ImageReadError, match="20x10 = 200 pixels, over the 199-pixel"):
        read_image(tmp_path / "small.png", max_pixels=199)
    assert read_image(tmp_path / "small.png", max_pixels=200).shape == (10, 20, 3)
    previous = images.MAX_PIXELS
    try:
        images.set_max_pixels(100)
        with pytest.raises(ImageReadError, match="over the 100-pixel budget"):
            read_image(tmp_path / "small.png")
    finally:
        images.set_max_pixels(previous)


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_write_keeps_the_icc_profile_and_exif_and_stores_the_picture_upright(tmp_path, extension):
    photo = np.random.default_rng(0).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    source = tmp_path / "phone.jpg"
    source.write_bytes(rotated_jpeg(photo, orientation=6))
    upright, header = read_image_and_header(source)
    assert upright.shape == (100, 60, 3) and header.display_size == (100, 60)
    write_image(tmp_path / f"out{extension}", upright, header=header)
    with Image.open(tmp_path / f"out{extension}") as written, Image.open(source) as original:
        assert written.size == (60, 100)
        assert written.info["icc_profile"] == original.info["icc_profile"]
        exif = written.getexif()
        assert exif[ORIENTATION_TAG] == 1 and exif[0x010F] == "keras-deblur test camera"
    # And our own reader agrees: no second rotation.
    assert read_image(tmp_path / f"out{extension}").shape == (100, 60, 3)


def test_exif_upright_patches_only_the_orientation():
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 8
    exif[0x010F] = "camera"
    raw = (
        exif.tobytes()[len(b"Exif\x00\x00") :]
        if exif.tobytes().startswith(b"Exif")
        else exif.tobytes()
    )
    patched = exif_upright(raw)
    assert len(patched) == len(raw) and patched != raw
    assert sum(a != b for a, b in zip(patched, raw, strict=True)) == 1  # one byte: 8 -> 1
    assert exif_upright(b"not tiff") is None


def test_a_broken_or_looping_symlink_is_named_as_such(tmp_path):
    os.symlink("loop.png", tmp_path / "loop.png")
    with pytest.raises(ImageReadError, match="loop.png: broken or looping symbolic link"):
        read_image(tmp_path / "loop.png")


def test_truncated_png_names_the_format_and_the_header_size(tmp_path):
    write_image(
        tmp_path / "whole.png",
        np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8),
    )
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ImageReadError, match=r"cut.png: truncated or corrupt PNG data \(header says 50x40\)"
    ):
        read_image(tmp_path / "cut.png")


class _FailingHalfWay:
    """A file object that writes half of what it is given, then fails (a full disk)."""

    def __init__(self, file):
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.file.close()

    def write(self, data):
        self.file.write(data[: len(data) // 2])
        self.file.flush()
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("existed", [False, True])
def test_an_interrupted_write_leaves_no_file_under_the_final_name(tmp_path, monkeypatch, existed):
    target = tmp_path / "photo.jpg"
    if existed:
        write_image(target, np.full((8, 8, 3), 50, np.uint8))
    before = target.read_bytes() if existed else None
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FailingHalfWay(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        write_image(target, np.zeros((64, 64, 3), np.uint8))
    # The old file (or none) is under the final name, and the temporary file is gone.
    assert os.listdir(tmp_path) == (["photo.jpg"] if existed else [])
    if existed:
        assert target.read_bytes() == before


def test_atomic_writes_keep_the_permissions_plain_open_gives(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    write_image(tmp_path / "atomic.png", np.zeros((4, 4), np.uint8))
    assert os.stat(tmp_path / "atomic.png").st_mode == os.stat(plain).st_mode
