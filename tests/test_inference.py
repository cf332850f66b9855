import numpy as np
import pytest

from keras_deblur.inference import (
    SHAPE_BUCKET,
    deblur,
    from_model_range,
    padding_for,
    predict_padded,
    predict_tiled,
    to_model_range,
)
from keras_deblur.metrics import psnr
from keras_deblur.models import build_generator


@pytest.fixture(scope="module")
def small_generator():
    return build_generator(num_res_blocks=1, num_filters=8)


def _photo(shape, dtype=np.uint8, seed=0):
    peak = np.iinfo(dtype).max
    rng = np.random.default_rng(seed)
    # Smooth content (like a photo), so tiling differences are not noise-driven.
    base = rng.uniform(0, 1, (max(2, shape[0] // 8), max(2, shape[1] // 8), 1))
    import cv2

    smooth = cv2.resize(
        base.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC
    )
    smooth = np.clip(smooth, 0, 1)
    if len(shape) == 2:
        return (smooth * peak).astype(dtype)
    channels = [np.roll(smooth, 3 * c, axis=1) for c in range(shape[2])]
    return (np.stack(channels, axis=2) * peak).astype(dtype)


def test_model_range_round_trip_is_exact_for_uint8_and_uint16():
    values = np.arange(256, dtype=np.uint8)
    floats = to_model_range(values)
    assert floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(from_model_range(floats), values)
    wide = np.array([0, 1, 32768, 65535], np.uint16)
    np.testing.assert_array_equal(from_model_range(to_model_range(wide), np.uint16), wide)


@pytest.mark.parametrize("side,pad", [(37, 3), (255, 1), (256, 0), (2, 6), (5, 3)])
def test_padding_reaches_a_multiple_of_four_and_at_least_eight(side, pad):
    assert padding_for(side, side) == (pad, pad)


@pytest.mark.parametrize("shape", [(37, 53, 3), (255, 257, 3), (2, 2, 3), (3, 40, 3)])
def test_deblur_keeps_size_and_dtype_for_odd_sizes(small_generator, shape):
    out = deblur(small_generator, _photo(shape))
    assert out.shape == shape and out.dtype == np.uint8


def test_whole_photos_are_padded_to_a_few_shapes(small_generator):
    class Recorder:
        shapes = set()

        def predict_on_batch(self, batch):
            self.shapes.add(batch.shape)
            return small_generator.predict_on_batch(batch)

    for shape in [(37, 53, 3), (64, 2, 3), (50, 61), (2, 2, 3)]:
        assert deblur(Recorder(), _photo(shape)).shape == shape
    assert Recorder.shapes == {(1, SHAPE_BUCKET, SHAPE_BUCKET, 3)}
    assert padding_for(65, 128, SHAPE_BUCKET) == (63, 0)


def test_deblur_crop_returns_the_top_left_of_the_padded_result(small_generator):
    image = _photo((37, 53, 3))
    floats = to_model_range(image)
    padded = np.pad(floats, ((0, 27), (0, 11), (0, 0)), mode="reflect")
    # predict_on_batch, as deblur runs it: an eager call runs other kernels than the traced
    # graph (grappler may fuse a conv with its bias add), and a last-bit difference on some
    # CPU's kernels would flip a uint8 rounding. A wrong crop offset changes most pixels.
    full = np.asarray(small_generator.predict_on_batch(padded[None]))[0]
    np.testing.assert_array_equal(deblur(small_generator, image), from_model_range(full[:37, :53]))


def test_gray_input_gives_gray_output(small_generator):
    gray = _photo((40, 44))
    out = deblur(small_generator, gray)
    assert out.shape == gray.shape
    single = deblur(small_generator, gray[:, :, None])
    assert single.shape == (40, 44, 1)
    np.testing.assert_array_equal(single[:, :, 0], out)


def test_rgba_alpha_passes_through_and_rgb_matches_rgb_input(small_generator):
    rgba = _photo((32, 36, 4))
    out = deblur(small_generator, rgba)
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])
    np.testing.assert_array_equal(out[:, :, :3], deblur(small_generator, rgba[:, :, :3].copy()))


def test_sixteen_bit_input_gives_sixteen_bit_output_with_fine_levels(small_generator):
    image = _photo((32, 32, 3), np.uint16)
    out = deblur(small_generator, image)
    assert out.dtype == np.uint16 and out.shape == image.shape
    # The result keeps more than 256 levels: 16-bit precision is not thrown away.
    assert np.unique(out).size > 256
    floats = to_model_range(image)
    expected = from_model_range(predict_padded(small_generator, floats, SHAPE_BUCKET), np.uint16)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "image,error",
    [
        (np.zeros((0, 0, 3), np.uint8), ValueError),
        (np.zeros((1, 1, 3), np.uint8), ValueError),
        (np.zeros((1, 50, 3), np.uint8), ValueError),
        (np.zeros((8, 8, 3), np.float32), ValueError),
        (np.zeros((8, 8, 2), np.uint8), ValueError),
        ([[1, 2], [3, 4]], TypeError),
    ],
    ids=["empty", "one-pixel", "one-row", "float", "two-channels", "list"],
)
def test_degenerate_input_is_refused_with_a_clear_error(small_generator, image, error):
    with pytest.raises(error, match="image must"):
        deblur(small_generator, image)


def test_tiles_cover_the_image_and_equal_a_full_pass_when_one_tile_fits(small_generator):
    image = to_model_range(_photo((48, 60, 3)))
    np.testing.assert_allclose(
        predict_tiled(small_generator, image, tile_size=64, tile_overlap=8),
        predict_padded(small_generator, image),
        atol=1e-6,
    )


class _RecordingIdentity:
    """Returns its input and records the tile shapes it was given."""

    input_shape = (None, None, None, 3)

    def __init__(self):
        self.shapes = []

    def predict_on_batch(self, batch):
        self.shapes.append(batch.shape[1:3])
        return batch


def test_tiles_are_evened_out_and_cover_every_pixel_once_blended():
    # 2000 rows need 3 tiles of at most 1024 (64 overlap), 1100 columns 2: tiles of
    # 712x584 do the same with less work than 1024x1024.
    image = to_model_range(_photo((2000, 1100, 3)))
    model = _RecordingIdentity()
    np.testing.assert_allclose(predict_tiled(model, image, 1024, 64), image, atol=1e-6)
    assert model.shapes == [(712, 584)] * 6


def test_tiling_rejects_bad_tile_settings(small_generator):
    image = to_model_range(_photo((48, 60, 3)))
    with pytest.raises(ValueError, match="tile_size"):
        predict_tiled(small_generator, image, tile_size=30)
    with pytest.raises(ValueError, match="tile_overlap"):
        predict_tiled(small_generator, image, tile_size=32, tile_overlap=16)


def test_small_tiles_get_an_overlap_that_fits_them(small_generator):
    image = _photo((72, 100, 3))
    # 64 pixels of overlap would be half of a 128-pixel tile (refused): a quarter is used.
    tiled = deblur(small_generator, image, tile_size=32)
    assert tiled.shape == image.shape
    np.testing.assert_array_equal(tiled, deblur(small_generator, image, 32, tile_overlap=8))


def test_tiled_full_size_generator_stays_close_to_a_full_pass_at_1024():
    """The figure quoted in the README: tiled vs full pass on a 1024x1024 photo,
    full-size generator, 2x2 tiles of 544 pixels with 64 pixels of overlap."""
    generator = build_generator()
    image = _photo((1024, 1024, 3), seed=5)
    full = deblur(generator, image, tile_size=0)
    tiled = deblur(generator, image, tile_size=544, tile_overlap=64)
    value = psnr(full, tiled)
    print(f"tiled vs full PSNR at 1024x1024: {value:.2f} dB")
    assert value > 30.0
    assert not np.array_equal(full, tiled), "4 tiles must differ slightly from a full pass"
