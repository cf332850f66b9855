import zipfile

import keras
import numpy as np
import pytest

from keras_deblur.models import build_critic, build_generator, load_generator


def _input(size=32):
    return np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype("float32")


def test_keras_file_round_trip_in_safe_mode_gives_identical_outputs(tmp_path):
    generator = build_generator(num_res_blocks=2, num_filters=8)
    path = tmp_path / "G.keras"
    generator.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(restored(_input()), generator(_input()))
    assert not [layer for layer in restored.layers if isinstance(layer, keras.layers.Lambda)]


def test_full_size_generator_round_trips_through_load_generator(tmp_path):
    generator = build_generator()
    path = tmp_path / "G.keras"
    generator.save(path)
    np.testing.assert_array_equal(load_generator(path)(_input()), generator(_input()))


def test_weights_file_round_trip(tmp_path):
    generator = build_generator(num_res_blocks=1, num_filters=8)
    path = tmp_path / "G.weights.h5"
    generator.save_weights(path)
    restored = load_generator(path, num_res_blocks=1, num_filters=8)
    np.testing.assert_array_equal(restored(_input()), generator(_input()))


def test_reference_dropout_survives_saving(tmp_path):
    path = tmp_path / "G.keras"
    build_generator(num_res_blocks=1, num_filters=8, dropout_at_inference=True).save(path)
    restored = load_generator(path)
    assert not np.allclose(restored(_input()), restored(_input()))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras: no such file"):
        load_generator(tmp_path / "nope.keras")


def test_a_critic_is_not_accepted_as_a_generator(tmp_path):
    path = tmp_path / "D.keras"
    build_critic(num_filters=8).save(path)
    with pytest.raises(ValueError, match="D.keras: not a DeblurGAN generator"):
        load_generator(path)


def test_corrupt_or_mismatched_files_give_one_line_errors(tmp_path):
    corrupt = tmp_path / "G.keras"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="G.keras: not a .keras archive") as info:
        load_generator(corrupt)
    assert "\n" not in str(info.value)
    weights = tmp_path / "small.weights.h5"
    build_generator(num_res_blocks=1, num_filters=8).save_weights(weights)
    with pytest.raises(ValueError, match="small.weights.h5: weights do not fit"):
        load_generator(weights)
    with pytest.raises(ValueError, match="expected a .keras, .weights.h5 or .tflite"):
        other = tmp_path / "G.pth"
        other.write_bytes(b"x")
        load_generator(other)


def test_each_kind_of_bad_model_file_is_named_for_what_it_is(tmp_path):
    good = tmp_path / "good.keras"
    build_generator(num_res_blocks=1, num_filters=8).save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip, but not a model")
    inputs = keras.Input((None, None, 3))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs)).save(
        tmp_path / "lambda.keras"
    )
    (tmp_path / "text.weights.h5").write_text("not HDF5")
    expected = {
        "truncated.keras": "not a .keras archive (not a zip file",
        "other.keras": "a zip archive without config.json",
        "lambda.keras": "refused in safe mode: it holds a Lambda layer",
        "text.weights.h5": "not an HDF5 weights file",
    }
    for name, message in expected.items():
        with pytest.raises(ValueError) as info:
            load_generator(tmp_path / name)
        assert str(info.value).startswith(f"{tmp_path / name}: {message}"), str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="is a folder, not a model file"):
        load_generator(tmp_path)
