"""tf.data pipelines: pairing, crops, determinism, mixing, bad files, embedded photos."""

import logging
import math
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from keras_deblur.data.datasets import (
    embedded_dataset,
    mix_datasets,
    mix_procedural,
    paired_dataset,
    procedural_dataset,
    synthetic_dataset,
)
from keras_deblur.data.embedded import embedded_photo_paths
from keras_deblur.data.images import read_image, write_image
from keras_deblur.data.paired_folders import find_image_pairs


def _texture(rng, height=64, width=64):
    """A smooth random texture, so that blur and misalignment both show."""
    noise = rng.uniform(0, 255, (height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    return np.clip(
        cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255
    ).astype(np.uint8)


def _write_pairs(root, layout="gopro", count=3, height=64, width=64):
    """Pairs whose blurred image is the sharp image's negative: any misalignment shows."""
    rng = np.random.default_rng(0)
    for index in range(count):
        sharp = _texture(rng, height, width)
        scene = f"scene_{index % 2}"
        prefix = os.path.join(root, scene) if layout == "gopro" else root
        write_image(os.path.join(prefix, "sharp", f"{index:04d}.png"), sharp)
        write_image(os.path.join(prefix, "blur", f"{index:04d}.png"), 255 - sharp)


def _as_list(dataset):
    return [(b.numpy(), s.numpy()) for b, s in dataset]


@pytest.mark.parametrize("layout", ["gopro", "flat"])
def test_paired_dataset_crops_blurred_and_sharp_at_the_same_place(tmp_path, layout):
    _write_pairs(str(tmp_path), layout, count=4)
    elements = _as_list(paired_dataset(str(tmp_path), crop_size=32, seed=0))
    assert len(elements) == 4
    for blurred, sharp in elements:
        assert blurred.shape == sharp.shape == (32, 32, 3)
        assert blurred.dtype == np.float32
        assert -1.0 <= sharp.min() and sharp.max() <= 1.0
        np.testing.assert_allclose(blurred, -sharp, atol=1e-6)


def test_training_flips_half_of_the_samples_horizontally(tmp_path):
    _write_pairs(str(tmp_path), "flat", count=1)
    source = read_image(str(tmp_path / "sharp" / "0000.png")) / 127.5 - 1
    dataset = paired_dataset(str(tmp_path), crop_size=64, seed=0).repeat(40)
    flipped = 0
    for blurred, sharp in _as_list(dataset):
        np.testing.assert_allclose(blurred, -sharp, atol=1e-6)
        if np.allclose(sharp, source[:, ::-1], atol=1e-6):
            flipped += 1
        else:
            np.testing.assert_allclose(sharp, source, atol=1e-6)
    assert 8 <= flipped <= 32


def test_paired_validation_is_centre_crops_in_file_order(tmp_path):
    _write_pairs(str(tmp_path), "flat", count=3)
    elements = _as_list(paired_dataset(str(tmp_path), crop_size=32, training=False))
    for (blurred, sharp), name in zip(elements, ["0000", "0001", "0002"], strict=True):
        source = read_image(os.path.join(tmp_path, "sharp", f"{name}.png"))
        np.testing.assert_allclose(sharp, source[16:48, 16:48] / 127.5 - 1, atol=1e-6)
        np.testing.assert_allclose(blurred, -sharp, atol=1e-6)


def test_training_is_reproducible_with_a_seed_and_reshuffled_each_epoch(tmp_path):
    _write_pairs(str(tmp_path), "flat", count=6)
    first = paired_dataset(str(tmp_path), crop_size=16, seed=3)
    second = paired_dataset(str(tmp_path), crop_size=16, seed=3)
    epoch_1, epoch_2 = _as_list(first), _as_list(first)
    for (a, _), (b, _) in zip(epoch_1, _as_list(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for (a, _), (b, _) in zip(epoch_1, epoch_2, strict=True))


def test_unmatched_files_are_an_error_that_lists_them(tmp_path):
    _write_pairs(str(tmp_path), "gopro", count=3)
    os.remove(tmp_path / "scene_0" / "sharp" / "0002.png")
    write_image(str(tmp_path / "scene_1" / "sharp" / "0009.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="2 files have no partner") as error:
        find_image_pairs(str(tmp_path))
    assert os.path.join("scene_0", "blur", "0002.png") in str(error.value)
    assert os.path.join("scene_1", "sharp", "0009.png") in str(error.value)


def test_a_folder_without_blur_and_sharp_is_an_error(tmp_path):
    write_image(str(tmp_path / "photo.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="blur/ and sharp/"):
        paired_dataset(str(tmp_path))


def test_resize_comes_before_cropping(tmp_path):
    _write_pairs(str(tmp_path), "flat", count=1, height=64, width=96)
    ((blurred, sharp),) = _as_list(
        paired_dataset(str(tmp_path), crop_size=None, training=False, resize=(24, 40))
    )
    assert sharp.shape == (24, 40, 3)
    source = read_image(str(tmp_path / "sharp" / "0000.png"))
    expected = cv2.resize(source, (40, 24), interpolation=cv2.INTER_AREA) / 127.5 - 1
    np.testing.assert_allclose(sharp, expected, atol=1e-6)


def test_images_smaller_than_the_crop_are_upscaled_not_padded(tmp_path):
    _write_pairs(str(tmp_path), "flat", count=1, height=20, width=30)
    ((blurred, sharp),) = _as_list(paired_dataset(str(tmp_path), crop_size=32, training=False))
    assert sharp.shape == (32, 32, 3)
    source = read_image(str(tmp_path / "sharp" / "0000.png"))
    upscaled = cv2.resize(source, (48, 32), interpolation=cv2.INTER_CUBIC)  # short side 20 -> 32
    np.testing.assert_allclose(sharp, upscaled[:, 8:40] / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(blurred, -sharp, atol=1e-6)


def test_full_frames_are_trimmed_to_multiples_of_4(tmp_path):
    _write_pairs(str(tmp_path), "flat", count=1, height=30, width=43)
    ((blurred, sharp),) = _as_list(paired_dataset(str(tmp_path), crop_size=None, training=False))
    assert sharp.shape == blurred.shape == (28, 40, 3)


def _write_photos(folder, count=3, size=64):
    rng = np.random.default_rng(1)
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"photo_{index}.png")
        write_image(path, _texture(rng, size, size))
        paths.append(path)
    return paths


def test_synthetic_crops_equal_crops_of_the_blurred_whole_photo(tmp_path):
    _write_photos(str(tmp_path), count=2)
    options = {"max_length": 20.0, "exposure": 0.005, "fraction": 1.0}
    full = _as_list(synthetic_dataset(str(tmp_path), crop_size=None, training=False, **options))
    crops = _as_list(synthetic_dataset(str(tmp_path), crop_size=32, training=False, **options))
    level = 2 / 255  # one uint8 level in model range
    for (full_blurred, full_sharp), (blurred, sharp) in zip(full, crops, strict=True):
        np.testing.assert_array_equal(sharp, full_sharp[16:48, 16:48])
        # Kernels of 130+ pixels are applied by FFT, whose float32 rounding depends on the
        # transform size: the crop's margin and the whole photo agree to ~1e-4 of a level,
        # so a pixel at a rounding boundary can land one level apart (about 1 FFT draw in
        # 25). A misplaced crop or kernel differs by many levels on most pixels.
        difference = np.abs(blurred - full_blurred[16:48, 16:48])
        assert difference.max() <= level * 1.001
        assert np.mean(difference > level / 2) < 0.001
        assert np.abs(blurred - sharp).mean() > 0.01  # it is blurred


def test_synthetic_blur_is_centred_on_the_sharp_crop(tmp_path):
    _write_photos(str(tmp_path), count=3, size=96)
    dataset = synthetic_dataset(str(tmp_path), crop_size=64, seed=5, max_length=15.0)
    for blurred, sharp in _as_list(dataset):
        errors = {
            (dy, dx): np.abs(np.roll(sharp, (dy, dx), axis=(0, 1)) - blurred)[8:-8, 8:-8].mean()
            for dy in range(-3, 4)
            for dx in range(-3, 4)
        }
        assert min(errors, key=errors.get) == (0, 0)


def test_synthetic_training_draws_new_blur_each_epoch_validation_does_not(tmp_path):
    _write_photos(str(tmp_path), count=1)
    training = synthetic_dataset(str(tmp_path), crop_size=32, seed=1)
    assert not np.array_equal(_as_list(training)[0][0], _as_list(training)[0][0])
    validation = synthetic_dataset(str(tmp_path), crop_size=32, training=False)
    np.testing.assert_array_equal(_as_list(validation)[0][0], _as_list(validation)[0][0])
    again = synthetic_dataset(str(tmp_path), crop_size=32, training=False)
    np.testing.assert_array_equal(_as_list(validation)[0][0], _as_list(again)[0][0])


def test_synthetic_rejects_unknown_blur_options(tmp_path):
    _write_photos(str(tmp_path), count=1)
    with pytest.raises(TypeError, match="max_lenght"):
        synthetic_dataset(str(tmp_path), max_lenght=10)


def test_mixing_follows_the_ratio():
    ones = tf.data.Dataset.from_tensors(1.0)
    zeros = tf.data.Dataset.from_tensors(0.0)
    mixed = next(iter(mix_datasets(ones, zeros, seed=0).batch(3000)))
    assert abs(float(np.mean(mixed)) - 2 / 3) < 0.03
    quarter = next(iter(mix_datasets(ones, zeros, synthetic_ratio=0.25, seed=0).batch(3000)))
    assert abs(float(np.mean(quarter)) - 0.25) < 0.03
    with pytest.raises(ValueError, match="synthetic_ratio"):
        mix_datasets(ones, zeros, synthetic_ratio=1.5)


def test_mixing_real_and_synthetic_pairs(tmp_path):
    _write_pairs(str(tmp_path / "real"), "flat", count=2)
    _write_photos(str(tmp_path / "photos"), count=2)
    mixed = mix_datasets(
        synthetic_dataset(str(tmp_path / "photos"), crop_size=32, seed=0),
        paired_dataset(str(tmp_path / "real"), crop_size=32, seed=0),
        seed=0,
    )
    batch = next(iter(mixed.batch(6)))
    assert batch[0].shape == batch[1].shape == (6, 32, 32, 3)


def _write_bad_files(folder):
    valid = (tmp := os.path.join(folder, "valid.png"))
    write_image(tmp, np.full((40, 40, 3), 100, np.uint8))
    with open(valid, "rb") as file:
        data = file.read()
    bad = {
        "empty.png": b"",
        "garbage.png": os.urandom(300),
        "notes.jpg": b"these are notes, not a photo\n",
        "truncated.png": data[: len(data) // 2],
    }
    for name, content in bad.items():
        with open(os.path.join(folder, name), "wb") as file:
            file.write(content)
    return sorted(bad)


def test_bad_files_are_skipped_with_a_warning_naming_each(tmp_path, caplog):
    bad = _write_bad_files(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        elements = _as_list(synthetic_dataset(str(tmp_path), crop_size=32, seed=0))
    assert len(elements) == 1
    for name in bad:
        assert sum(name in record.getMessage() for record in caplog.records) == 1
    assert any("skipped 4 of 5" in record.getMessage() for record in caplog.records)


def test_nothing_usable_is_a_clear_error(tmp_path):
    _write_bad_files(str(tmp_path))
    os.remove(tmp_path / "valid.png")
    with pytest.raises(ValueError, match="none of the 4 files could be used"):
        synthetic_dataset(str(tmp_path))


def test_a_file_that_breaks_after_the_check_is_skipped_not_fatal(tmp_path, caplog):
    paths = _write_photos(str(tmp_path), count=3)
    dataset = synthetic_dataset(paths, crop_size=32, training=False)
    with open(paths[1], "wb") as file:
        file.write(b"overwritten")
    with caplog.at_level(logging.WARNING):
        elements = _as_list(dataset)
    assert len(elements) == 2
    assert any(paths[1] in record.getMessage() for record in caplog.records)


def test_bad_or_mismatched_pairs_are_skipped(tmp_path, caplog):
    _write_pairs(str(tmp_path), "flat", count=3)
    open(tmp_path / "blur" / "0000.png", "wb").close()
    write_image(str(tmp_path / "sharp" / "0001.png"), np.zeros((48, 64, 3), np.uint8))
    with caplog.at_level(logging.WARNING):
        elements = _as_list(paired_dataset(str(tmp_path), crop_size=32, seed=0))
    assert len(elements) == 1
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "0000.png: empty file" in messages
    assert "differs from" in messages and "0001.png" in messages
    assert "skipped 2 of 3 pairs" in messages


def test_embedded_photos_are_colour_and_the_split_is_fixed_and_disjoint():
    train, validation = embedded_photo_paths("train"), embedded_photo_paths("validation")
    assert len(train) >= 4 and len(validation) >= 1
    assert not set(train) & set(validation)
    assert sorted(train + validation) == sorted(embedded_photo_paths("all"))
    for path in train + validation:
        image = read_image(path)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 256
    with pytest.raises(ValueError, match="split"):
        embedded_photo_paths("test")


def test_embedded_dataset_gives_blurred_crops():
    elements = _as_list(embedded_dataset("validation", crop_size=64, training=False))
    assert len(elements) == len(embedded_photo_paths("validation"))
    for blurred, sharp in elements:
        assert blurred.shape == sharp.shape == (64, 64, 3)
        assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(sharp, axis=1)).mean()


def test_unblurred_ratio_leaves_that_share_of_pairs_sharp(tmp_path):
    _write_photos(str(tmp_path), count=1)
    photos = [str(tmp_path / name) for name in sorted(os.listdir(tmp_path))] * 40
    pairs = _as_list(synthetic_dataset(photos, crop_size=32, seed=3, unblurred_ratio=0.5))
    unblurred = sum(np.array_equal(blurred, sharp) for blurred, sharp in pairs)
    assert 10 <= unblurred <= 30  # about half of 40
    pairs = _as_list(synthetic_dataset(photos[:10], crop_size=32, seed=3))
    assert not any(np.array_equal(blurred, sharp) for blurred, sharp in pairs)


def _softened_targets(photos, options, **share):
    """How many unblurred pairs' targets `share` softens (to below 0.9 of their gradient).

    Unblurred pairs keep their target as input: the defocus is the target's own.
    """
    plain = _as_list(synthetic_dataset(photos, **options))
    defocused = _as_list(synthetic_dataset(photos, **share, **options))
    assert all(np.array_equal(blurred, sharp) for blurred, sharp in defocused)
    pairs = zip(plain, defocused, strict=True)
    return sum(_gradient(d[1]) < 0.9 * _gradient(p[1]) for p, d in pairs)


@pytest.mark.parametrize("augment", [False, True])
def test_depth_of_field_ratio_softens_that_share_of_targets_and_keeps_it_in_them(tmp_path, augment):
    photos = _write_photos(str(tmp_path), count=1) * 20

    options = dict(crop_size=32, seed=3, unblurred_ratio=1.0, augment=augment)
    softer = _softened_targets(photos, options, depth_of_field_ratio=0.5)
    assert 4 <= softer <= 16  # about half of 20
    leaves = _as_list(
        procedural_dataset(32, seed=1, unblurred_ratio=1.0, depth_of_field_ratio=1.0).take(4)
    )
    assert all(np.array_equal(blurred, sharp) for blurred, sharp in leaves)
    with pytest.raises(ValueError, match="depth_of_field_ratio"):
        synthetic_dataset(photos, crop_size=32, depth_of_field_ratio=1.5)


@pytest.mark.parametrize("augment", [False, True])
def test_soft_ratio_softens_that_share_of_targets_all_over_and_keeps_it(tmp_path, augment):
    photos = _write_photos(str(tmp_path), count=1) * 20

    options = dict(crop_size=32, seed=3, unblurred_ratio=1.0, augment=augment)
    assert 4 <= _softened_targets(photos, options, soft_ratio=0.5) <= 16  # about half of 20
    plain = _as_list(synthetic_dataset(photos, **options))
    # Beside depth of field, the shares add up: all 20 defocused one way or the other (a crop
    # inside a focal band stays sharp).
    both = _as_list(synthetic_dataset(photos, depth_of_field_ratio=0.5, soft_ratio=0.5, **options))
    changed = [not np.array_equal(b[1], p[1]) for p, b in zip(plain, both, strict=True)]
    assert sum(changed) >= 16, changed
    leaves = {
        ratio: _as_list(
            procedural_dataset(32, seed=1, unblurred_ratio=1.0, soft_ratio=ratio).take(4)
        )
        for ratio in (0.0, 1.0)
    }
    assert sum(map(_gradient, (s for _, s in leaves[1.0]))) < 0.8 * sum(
        map(_gradient, (s for _, s in leaves[0.0]))
    )
    with pytest.raises(ValueError, match="depth_of_field_ratio \\+ soft_ratio \\+ misfocus_ratio"):
        synthetic_dataset(photos, crop_size=32, depth_of_field_ratio=0.6, soft_ratio=0.6)


def test_misfocus_ratio_is_the_share_after_soft_and_keeps_its_softness_in_the_target(tmp_path):
    photos = _write_photos(str(tmp_path), count=1) * 20
    options = dict(crop_size=32, seed=3, unblurred_ratio=1.0)
    assert 4 <= _softened_targets(photos, options, misfocus_ratio=0.5) <= 16  # about half of 20
    plain = _as_list(synthetic_dataset(photos, **options))
    # All three shares at a third each add up: every crop is defocused (one inside a
    # focal band stays sharp).
    shares = dict(depth_of_field_ratio=1 / 3, soft_ratio=1 / 3, misfocus_ratio=1 / 3)
    every = _as_list(synthetic_dataset(photos, **shares, **options))
    assert sum(not np.array_equal(e[1], p[1]) for p, e in zip(plain, every, strict=True)) >= 16
    leaves = _as_list(
        procedural_dataset(32, seed=1, unblurred_ratio=1.0, misfocus_ratio=1.0).take(4)
    )
    plain_leaves = _as_list(procedural_dataset(32, seed=1, unblurred_ratio=1.0).take(4))
    assert sum(_gradient(s) for _, s in leaves) < 0.8 * sum(_gradient(s) for _, s in plain_leaves)


def test_sharp_photos_are_decoded_once_and_read_again_when_replaced(tmp_path, monkeypatch):
    from keras_deblur.data import datasets as datasets_module

    path = str(tmp_path / "photo.png")
    write_image(path, np.full((40, 40, 3), 10, np.uint8))
    decodes = []
    real_read = datasets_module.read_image
    monkeypatch.setattr(datasets_module, "read_image", lambda p: decodes.append(p) or real_read(p))
    photos = datasets_module.PhotoCache()
    first = photos.read(path)
    second = photos.read(path)
    assert len(decodes) == 1 and second is first and not first.flags.writeable
    os.utime(path, ns=(1, 1))  # a replaced file has another modification time
    write_image(path, np.full((40, 40, 3), 200, np.uint8))
    os.utime(path, ns=(2, 2))
    assert photos.read(path)[0, 0, 0] == 200 and len(decodes) == 2
    full = datasets_module.PhotoCache(budget=0)  # over budget: never kept
    full.read(path)
    full.read(path)
    assert len(decodes) == 4


def test_the_photo_cache_is_safe_from_many_threads(tmp_path):
    import concurrent.futures
    import sys

    from keras_deblur.data.datasets import PhotoCache

    paths = []
    for index in range(60):
        paths.append(str(tmp_path / f"p{index}.png"))
        write_image(paths[-1], np.full((4, 4, 3), index, np.uint8))
    photos = PhotoCache(budget=40 * 48)  # room for 40 of the 60
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            images = list(pool.map(photos.read, paths * 20))
    finally:
        sys.setswitchinterval(interval)
    assert all(int(image[0, 0, 0]) == index % 60 for index, image in enumerate(images))
    assert photos._bytes <= photos.budget and len(photos._images) == 40


def _found_in(crop, image):
    """Whether `crop` is, pixel for pixel, a window of `image` (both in model range)."""
    crop, image = (np.rint((x + 1) * 127.5).astype(np.int16) for x in (crop, image))
    windows = np.lib.stride_tricks.sliding_window_view(image, crop.shape)
    return bool(np.any(np.all(windows == crop, axis=(-3, -2, -1))))


def test_augmentation_rescales_rotates_and_recolours_training_photos_only(tmp_path):
    _write_photos(str(tmp_path), count=1, size=96)
    photo = read_image(str(tmp_path / "photo_0.png")) / 127.5 - 1
    photos = [str(tmp_path / "photo_0.png")] * 20
    options = {"crop_size": 32, "seed": 2, "unblurred_ratio": 1.0}

    def windows_of_the_photo(dataset):
        return sum(
            _found_in(sharp, photo) or _found_in(sharp, photo[:, ::-1])
            for _, sharp in _as_list(dataset)
        )

    assert windows_of_the_photo(synthetic_dataset(photos, **options)) == 20
    assert windows_of_the_photo(synthetic_dataset(photos, augment=True, **options)) <= 2
    validation = {**options, "training": False}
    plain = _as_list(synthetic_dataset(photos[:3], **validation))
    augmented = _as_list(synthetic_dataset(photos[:3], augment=True, **validation))
    for (blurred, sharp), (augmented_blurred, augmented_sharp) in zip(
        plain, augmented, strict=True
    ):
        np.testing.assert_array_equal(sharp, augmented_sharp)
        np.testing.assert_array_equal(blurred, augmented_blurred)


def test_augmented_pairs_stay_aligned(tmp_path):
    _write_photos(str(tmp_path), count=2, size=96)
    # Unblurred pairs: whatever the augmentation did, both sides must have had it.
    dataset = synthetic_dataset(
        str(tmp_path), crop_size=48, seed=4, augment=True, unblurred_ratio=1.0
    )
    for blurred, sharp in _as_list(dataset.repeat(4)):
        np.testing.assert_array_equal(blurred, sharp)


@pytest.mark.parametrize(
    "options, level_range",
    [({"noise_ratio": 1.0}, (0.7, 5.0)), ({"jpeg_ratio": 1.0, "jpeg_quality": (90, 95)}, None)],
)
def test_noise_and_jpeg_change_only_the_blurred_image(tmp_path, options, level_range):
    _write_photos(str(tmp_path), count=3, size=64)
    # Validation streams (no random crops or flips) also get noise and JPEG.
    same = {"crop_size": 32, "training": False, "unblurred_ratio": 1.0}
    clean = _as_list(synthetic_dataset(str(tmp_path), **same))
    degraded = _as_list(synthetic_dataset(str(tmp_path), **same, **options))
    for (clean_blurred, clean_sharp), (blurred, sharp) in zip(clean, degraded, strict=True):
        np.testing.assert_array_equal(clean_blurred, clean_sharp)  # unblurred: the same image
        np.testing.assert_array_equal(sharp, clean_sharp)  # the target is untouched
        difference = (blurred - sharp) * 127.5  # in levels of 255
        assert np.abs(difference).mean() > 0.3
        if level_range:  # sensor noise of 1-4 levels at mid-grey
            assert level_range[0] < difference.std() < level_range[1]
        else:  # JPEG at quality 90-95; the texture's random chroma suffers most
            assert np.abs(difference).mean() < 20


@pytest.mark.parametrize(
    "options, name",
    [
        ({"unblurred_ratio": 1.2}, "unblurred_ratio"),
        ({"noise_ratio": -0.1}, "noise_ratio"),
        ({"jpeg_ratio": 2}, "jpeg_ratio"),
        ({"noise_levels": (4.0, 1.0)}, "noise_levels"),
        ({"noise_levels": 3.0}, "noise_levels"),
        ({"jpeg_quality": (60, 101)}, "jpeg_quality"),
        ({"jpeg_quality": (60.5, 90)}, "jpeg_quality"),
        ({"augment": "yes"}, "augment"),
    ],
)
def test_bad_pair_options_are_one_line_errors_naming_the_option(tmp_path, options, name):
    _write_photos(str(tmp_path), count=1)
    with pytest.raises(ValueError, match=name) as error:
        synthetic_dataset(str(tmp_path), crop_size=32, **options)
    assert "\n" not in str(error.value)
    if name != "augment":
        with pytest.raises(ValueError, match=name):
            procedural_dataset(32, **options)


def test_procedural_stream_is_endless_blurred_seeded_and_like_the_photo_stream(tmp_path):
    options = {"max_length": 20.0, "exposure": 0.005, "fraction": 1.0}
    dataset = procedural_dataset(48, seed=3, **options)
    _write_photos(str(tmp_path), count=1)
    assert dataset.element_spec == synthetic_dataset(str(tmp_path), crop_size=48).element_spec
    blurred, sharp = next(iter(dataset.repeat(1).batch(8)))
    assert blurred.shape == sharp.shape == (8, 48, 48, 3)
    # Blurred: most pairs differ (a crop inside one flat leaf cannot), and edges soften.
    assert sum(np.abs(b - s).mean() > 0.02 for b, s in zip(blurred, sharp, strict=True)) >= 6
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.7 * np.abs(np.diff(sharp, axis=2)).mean()
    again = next(iter(procedural_dataset(48, seed=3, **options).batch(8)))
    np.testing.assert_array_equal(sharp, again[1])
    other = next(iter(procedural_dataset(48, seed=4).batch(8)))
    assert not np.array_equal(sharp, other[1])
    validation = procedural_dataset(48, training=False).take(3)
    for (a, _), (b, _) in zip(_as_list(validation), _as_list(validation), strict=True):
        np.testing.assert_array_equal(a, b)


def test_procedural_blur_is_centred_on_the_sharp_crop():
    # Straight kernels, centred within half a pixel; a crop taken anywhere but the
    # middle of the canvas would be shifted by the kernel's margin (7 pixels here).
    dataset = procedural_dataset(64, seed=5, max_length=14.0, exposure=0.0, fraction=1.0)
    for blurred, sharp in _as_list(dataset.take(4)):
        errors = {
            (dy, dx): np.abs(np.roll(sharp, (dy, dx), axis=(0, 1)) - blurred)[8:-8, 8:-8].mean()
            for dy in range(-7, 8)
            for dx in range(-7, 8)
        }
        dy, dx = min(errors, key=errors.get)
        assert max(abs(dy), abs(dx)) <= 1


def test_procedural_options_are_checked_when_the_dataset_is_made():
    with pytest.raises(ValueError, match="crop_size"):
        procedural_dataset(None)
    with pytest.raises(ValueError, match="rmin"):
        procedural_dataset(32, leaf_options={"rmin": 0})
    with pytest.raises(TypeError, match="max_lenght"):
        procedural_dataset(32, max_lenght=10)
    with pytest.raises(ValueError, match="pairs_per_canvas"):
        procedural_dataset(32, pairs_per_canvas=0)


def test_procedural_pairs_share_each_canvas_among_pairs_per_canvas(monkeypatch):
    from keras_deblur.data import datasets as datasets_module

    canvases, pairs = [], []
    draw, cut = datasets_module.dead_leaves_image, datasets_module._procedural_pair
    monkeypatch.setattr(
        datasets_module, "dead_leaves_image", lambda *a, **k: canvases.append(1) or draw(*a, **k)
    )
    monkeypatch.setattr(
        datasets_module, "_procedural_pair", lambda *a, **k: pairs.append(1) or cut(*a, **k)
    )
    for shared in (1, 4):
        canvases.clear()
        pairs.clear()
        dataset = procedural_dataset(32, seed=2, pairs_per_canvas=shared, max_length=8.0)
        canvases.clear()  # the leaf options' check draws one
        _as_list(dataset.take(16))
        # tf.data may decode a few pairs ahead; each group's canvas is drawn once.
        assert len(pairs) >= 16
        assert len(canvases) == math.ceil(len(pairs) / shared)


def test_mixing_procedural_pairs_follows_the_ratio():
    ones = tf.data.Dataset.from_tensors(1.0)
    zeros = tf.data.Dataset.from_tensors(0.0)
    mixed = next(iter(mix_procedural(zeros, ones, procedural_ratio=0.3, seed=0).batch(3000)))
    assert abs(float(np.mean(mixed)) - 0.3) < 0.03
    with pytest.raises(ValueError, match="procedural_ratio"):
        mix_procedural(zeros, ones, procedural_ratio=-0.5)


def _whole_photo_pair(photo, rng, crop_size, blur_options):
    """The augmented pair as first written: rescale and jitter the whole photo, crop, blur."""
    from keras_deblur.data import datasets
    from keras_deblur.data.augment import jitter_colours, random_dihedral, random_rescale

    sharp = jitter_colours(random_rescale(photo, rng, min_side=crop_size), rng)
    kernel = datasets._draw_kernel(rng, blur_options)
    top, left = datasets._window(rng, sharp.shape, crop_size, training=True)
    window = (crop_size, crop_size)
    pair = datasets._degrade_window(sharp, rng, kernel, top, left, window, blur_options)
    return random_dihedral(rng, *pair)


def _gradient(image):
    """Mean absolute difference between neighbours: sharpness, which the scale and blur set."""
    image = image.astype(float)
    return np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean()


def test_augmented_crops_keep_the_whole_photo_augmentation_distribution():
    """Rescaling and jittering only the crop's window draws the same crops, scales, colours."""
    from keras_deblur.data import datasets

    photos = embedded_photo_paths("train")[:4]
    options = {"unblurred_ratio": 0.2, "noise_ratio": 0.2, "jpeg_ratio": 0.2}
    cache = datasets.PhotoCache()
    stats = {"fast": [], "whole": []}
    for seed in range(80):
        path = photos[seed % len(photos)]
        fast = datasets._blur_on_the_fly(
            path, np.random.default_rng(seed), 64, True, True, options, cache
        )
        whole = _whole_photo_pair(cache.read(path), np.random.default_rng(seed), 64, options)
        for name, pair in (("fast", fast), ("whole", whole)):
            sharp = pair[1].astype(float)
            stats[name].append([*sharp.mean(axis=(0, 1)), sharp.std(), *map(_gradient, pair)])
        # The same draws: the same window of the same rescaled, recoloured photo,
        # on a sampling grid moved by under a pixel (see augment.rescale_region).
        assert fast[1].shape == whole[1].shape == (64, 64, 3)
        assert abs(fast[1].astype(float).mean() - whole[1].astype(float).mean()) < 2.0
    fast, whole = np.array(stats["fast"]), np.array(stats["whole"])
    # Colours, contrast and the sharpness of both sides, over the sample.
    np.testing.assert_allclose(fast.mean(axis=0), whole.mean(axis=0), rtol=0.02)
    np.testing.assert_allclose(fast.std(axis=0), whole.std(axis=0), rtol=0.05)
