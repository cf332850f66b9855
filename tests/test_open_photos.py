"""Tests for the open-photo training set (`keras_deblur.data.open_photos`) without a download."""

import os

import numpy as np

from keras_deblur.data import open_photos
from keras_deblur.data.images import read_image, write_image


def test_write_split_resizes_the_photos_adds_the_textures_and_lists_every_licence(tmp_path):
    source = tmp_path / "backgrounds"
    rng = np.random.default_rng(0)
    for name in open_photos.PHOTOS:
        write_image(source / name, rng.integers(0, 256, (300, 2000, 3), dtype=np.uint8))
    plain = open_photos.write_split(str(source), str(tmp_path / "plain"))
    assert not any("texture_" in path for path in plain) and len(plain) == 2 * 12 + 3
    written = open_photos.write_split(str(source), str(tmp_path / "out"), textures=True)

    train = sorted(os.listdir(tmp_path / "out" / "train"))
    val = sorted(os.listdir(tmp_path / "out" / "val"))
    assert len(val) == 3 and all(name.endswith("_1024.png") for name in val)
    textures = [name for name in train if name.startswith("texture_")]
    assert len(textures) == len(open_photos.TEXTURES) == 6
    assert len(train) == 2 * 12 + 6 and len(written) == len(train) + len(val)
    assert read_image(tmp_path / "out" / "train" / "Bridge_by_Sander_Klootwijk_640.png").shape == (
        96,
        640,
        3,
    )
    grass = read_image(tmp_path / "out" / "train" / "texture_grass.png")
    assert grass.shape == (512, 512, 3) and np.array_equal(grass[..., 0], grass[..., 2])
    licences = (tmp_path / "out" / "LICENSES.md").read_text()
    for name in list(open_photos.PHOTOS) + list(open_photos.TEXTURES):
        assert f"| {name} |" in licences
