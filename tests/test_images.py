import numpy as np
import pytest

from keras_deblur.data.images import (
    ImageReadError,
    list_images,
    read_image,
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
