"""The fixed validation set: manifest round trip, checksums, pairs, scores per class."""

import os

import cv2
import keras
import numpy as np
import pytest
import skimage.data

from keras_deblur.data.images import write_image
from keras_deblur.data.motion_blur import synthesize_blur
from keras_deblur.validation import (
    CLASSES,
    build_validation_manifest,
    load_manifest,
    load_pairs,
    materialise,
    paired_difference,
    save_manifest,
    score_generator,
)
from keras_deblur.validation.pairs import window_pair
from keras_deblur.validation.scoring import (
    VISIBLE_PSNR_DB,
    clustered_mean,
    format_table,
    score_outputs,
)


@pytest.fixture()
def photo_dir(tmp_path):
    """Three textured photos; "coffee.png" plays the defocus photo."""
    folder = tmp_path / "photos"
    for name, image in (
        ("astronaut.png", skimage.data.astronaut()),
        ("coffee.png", skimage.data.coffee()),
        ("chelsea.png", skimage.data.chelsea()),
    ):
        write_image(str(folder / name), cv2.resize(image, (240, 192), interpolation=cv2.INTER_AREA))
    return folder


@pytest.fixture()
def manifest(photo_dir):
    paths = sorted(str(p) for p in photo_dir.iterdir())
    return build_validation_manifest(
        paths, ["coffee.png"], seed=3, crops_per_class=6, crop_size=64, whole_photos=True
    )


def _identity():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def _noisy():
    """Adds a fixed +-25-level pattern: touches every image, helps none."""
    inputs = keras.Input((None, None, 3))
    pattern = keras.layers.Lambda(lambda x: x + 0.2 * keras.ops.sin(x * 1000.0))(inputs)
    return keras.Model(inputs, pattern)


def test_manifest_has_every_class_and_round_trips_to_identical_pairs(manifest, photo_dir, tmp_path):
    assert {s["class"] for s in manifest["samples"]} == set(CLASSES)
    defocus = [s for s in manifest["samples"] if s["class"] == "defocus"]
    assert all(s["photo"] == "coffee.png" and s["kernel"] is None for s in defocus)
    path = tmp_path / "set" / "validation_set.json"
    save_manifest(manifest, path)
    loaded = load_manifest(path)
    assert loaded["samples"] == manifest["samples"]
    first = load_pairs(manifest, [str(photo_dir)])
    cached = materialise(loaded, str(tmp_path / "cache"), [str(photo_dir)])
    again = materialise(loaded, str(tmp_path / "cache"), [str(photo_dir)])  # from the PNGs
    for pairs in (cached, again):
        assert [s["id"] for s in pairs.samples] == [s["id"] for s in first.samples]
        for a, b in zip(first.blurred + first.sharp, pairs.blurred + pairs.sharp, strict=True):
            np.testing.assert_array_equal(a, b)


def test_shaken_crops_differ_and_still_crops_are_sharp(manifest, photo_dir):
    pairs = load_pairs(manifest, [str(photo_dir)], whole=False)
    for sample, blurred, sharp in zip(pairs.samples, pairs.blurred, pairs.sharp, strict=True):
        assert blurred.shape == sharp.shape == (64, 64, 3)
        assert np.array_equal(blurred, sharp) == (sample["class"] in ("unblurred", "defocus"))


def test_a_crop_is_blurred_as_the_whole_photo_would_be():
    photo = cv2.resize(skimage.data.astronaut(), (120, 100), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    kernel = np.zeros((15, 15), np.float32)
    kernel[7, 2:13] = rng.uniform(size=11)
    kernel /= kernel.sum()
    whole, _ = synthesize_blur(photo, rng, kernel=kernel)
    for window in ([0, 0, 32, 32], [40, 50, 32, 32], [68, 88, 32, 32]):
        blurred, sharp = window_pair(photo, window, kernel)
        top, left, height, width = window
        expected = whole[top : top + height, left : left + width]
        # Same pixels up to float rounding of a different-size filter.
        assert np.abs(blurred.astype(int) - expected).max() <= 1
        assert np.mean(blurred != expected) < 0.01


def test_a_changed_photo_is_refused_in_one_line_naming_it(manifest, photo_dir, tmp_path):
    image = cv2.imread(str(photo_dir / "chelsea.png"))
    image[0, 0] ^= 1
    cv2.imwrite(str(photo_dir / "chelsea.png"), image)
    for build in (
        lambda: load_pairs(manifest, [str(photo_dir)]),
        lambda: materialise(manifest, str(tmp_path / "cache"), [str(photo_dir)]),
    ):
        with pytest.raises(ValueError) as error:
            build()
        assert "chelsea.png" in str(error.value) and "\n" not in str(error.value)


def test_a_missing_photo_is_named(manifest, photo_dir):
    os.remove(photo_dir / "coffee.png")
    with pytest.raises(FileNotFoundError, match="coffee.png"):
        load_pairs(manifest, [str(photo_dir)])


def test_identity_scores_exactly_zero_on_every_class(manifest, photo_dir):
    pairs = load_pairs(manifest, [str(photo_dir)])
    result = score_generator(_identity(), pairs, batch_size=4)
    assert set(result["classes"]) == set(CLASSES)
    for summary in result["classes"].values():
        assert summary["gain"] == 0.0 and summary["gain_se"] == 0.0
        assert summary["worst_sample_gain"] == 0.0 and summary["ssim_gain"] == 0.0
    assert result["val_score"] == 0.0
    assert "val_score +0.000" in format_table(result)


def test_a_noisy_model_scores_negative_everywhere_and_unsharp_helps_shakes(manifest, photo_dir):
    pairs = load_pairs(manifest, [str(photo_dir)], whole=False)
    identity = score_generator(_identity(), pairs, batch_size=4, with_ssim=False)
    noisy = score_generator(_noisy(), pairs, batch_size=4, with_ssim=False)
    for name in CLASSES:
        assert noisy["classes"][name]["gain"] < -0.1, name
    assert noisy["val_score"] < -0.1
    for name in ("short", "long"):
        assert identity["classes"][name]["unsharp_gain"] > 0, name
    for name in ("unblurred", "defocus"):
        assert identity["classes"][name]["unsharp_gain"] < 0, name
    difference = paired_difference(noisy, identity)
    for name in CLASSES:
        assert difference[name]["difference"] == pytest.approx(noisy["classes"][name]["gain"])


def test_an_invisible_change_to_a_flat_shaken_crop_does_not_move_its_gain(manifest, photo_dir):
    pairs = load_pairs(manifest, [str(photo_dir)], whole=False)
    index = next(i for i, s in enumerate(pairs.samples) if s["class"] == "short")
    flat = np.full_like(pairs.sharp[index], 128)
    pairs.sharp[index] = flat
    pairs.blurred[index] = flat.copy()
    pairs.blurred[index][0, 0, 0] += 1  # a shake that left the crop at ~80 dB
    outputs = list(pairs.blurred)
    rounded = flat.copy()
    rounded[:2, :, 0] += 1  # two rows one level off: ~60 dB, invisible
    outputs[index] = rounded
    row = score_outputs(pairs, outputs, with_ssim=False)["samples"][index]
    assert row["psnr_blurred"] > 70 and VISIBLE_PSNR_DB < row["psnr_deblurred"] < 70
    assert row["gain"] == 0.0
    checker = 6 * (np.indices(flat.shape).sum(0) % 2)
    outputs[index] = (flat + checker).astype(np.uint8)
    visible = score_outputs(pairs, outputs, with_ssim=False)["samples"][index]
    assert visible["gain"] < -3.0  # a visible +-6-level pattern still costs


def test_clustered_error_is_over_photos_and_larger_than_over_crops():
    # Two photos whose crops agree with each other but not across photos.
    values = [1.0, 1.1, 0.9, 1.0, -1.0, -0.9, -1.1, -1.0]
    clusters = ["a"] * 4 + ["b"] * 4
    mean, se, over = clustered_mean(values, clusters)
    assert mean == pytest.approx(0.0) and over == "photos"
    assert se == pytest.approx(1.0, rel=0.05)  # the spread of the 2 photo means
    _, se_single, over_single = clustered_mean(values[:4], clusters[:4])
    assert over_single == "crops" and se_single < 0.1


def test_packaged_manifest_loads_and_covers_every_class():
    manifest = load_manifest()
    crops = [s for s in manifest["samples"] if not s["whole"]]
    assert len(crops) >= 256
    assert {s["class"] for s in crops} == set(CLASSES)
    assert all(len(p["sha256"]) == 64 for p in manifest["photos"])
