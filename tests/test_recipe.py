"""The training recipe: fields, presets, JSON, flags and --resume all describe one object."""

import csv
import dataclasses
import json

import numpy as np
import pytest
from absl import flags
from test_train_cli import TINY

from keras_deblur import train
from keras_deblur.gan import TEST_METRICS
from keras_deblur.recipe import FIELD_NAMES, PRESETS, Recipe, get_preset


def _flag_values(*argv):
    flag_values = train.define_flags(flags.FlagValues())
    flag_values(["train", *argv])
    return flag_values


def test_every_recipe_field_has_a_flag_and_every_flag_a_field():
    defined = set(_flag_values()) - {"helpshort", "helpfull", "helpxml", "help", "?"}
    assert defined - set(train.RUN_FLAGS) == set(FIELD_NAMES)


def test_the_default_recipe_is_the_paper():
    paper = Recipe()
    assert (paper.crop_size, paper.batch_size, paper.epochs) == (256, 1, 300)
    assert (paper.learning_rate, paper.critic_steps, paper.gp_weight) == (1e-4, 5, 10.0)
    assert (paper.content_weight, paper.adversarial_weight, paper.pixel_weight) == (100.0, 1.0, 0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_config_json(tmp_path, name):
    path = str(tmp_path / "config.json")
    get_preset(name).to_json(path)
    assert Recipe.from_json(path) == get_preset(name)
    assert set(json.loads(open(path).read())) == set(FIELD_NAMES)


def test_flags_override_only_what_they_set_and_parse_lists():
    recipe = train.recipe_from_flags(
        _flag_values(
            "--preset=mobile",
            "--epochs=500",
            "--blur_exposures=uniform,0.005",
            "--vgg_weights=none",
        )
    )
    assert recipe == PRESETS["mobile"].replace(epochs=500, blur_exposures=(None, 0.005))
    assert train.recipe_from_flags(_flag_values()) == PRESETS["quick"]


def test_none_sets_an_optional_field_to_none_and_is_refused_elsewhere(tmp_path):
    budgeted = PRESETS["mobile"].replace(
        max_cpu_minutes=12.0, num_filters=32, init_weights="mobile", vgg_weights="imagenet"
    )
    budgeted.to_json(str(tmp_path / "config.json"))
    unset = ("max_cpu_minutes", "num_filters", "init_weights", "vgg_weights")
    flag_values = _flag_values(
        "--resume", f"--output_dir={tmp_path}", *(f"--{name}=None" for name in unset)
    )
    assert train.recipe_from_flags(flag_values) == PRESETS["mobile"]
    with pytest.raises(flags.IllegalFlagValueError, match="--epochs=none"):
        _flag_values("--epochs=none")


def test_resume_restores_the_saved_recipe_and_applies_only_the_flags_given(tmp_path):
    run_dir = tmp_path / "run"
    recipe = Recipe(**dict(TINY, epochs=1, architecture="mobile", pixel_loss="log_mse"))
    train.train(recipe, str(run_dir))
    resumed = train.recipe_from_flags(_flag_values("--resume", f"--output_dir={run_dir}"))
    assert resumed == recipe
    longer = train.recipe_from_flags(
        _flag_values("--resume", f"--output_dir={run_dir}", "--epochs=3")
    )
    assert longer == recipe.replace(epochs=3)
    result = train.resume(str(run_dir), epochs=2)
    assert train.load_recipe(str(run_dir)) == recipe.replace(epochs=2)
    assert len(result.history["psnr"]) == 1  # only the new epoch
    with open(run_dir / "training_log.csv") as file:
        rows = list(csv.DictReader(file))
    for column in ("cpu_minutes", "wall_minutes"):  # the resumed run keeps counting
        assert 0 < float(rows[0][column]) < float(rows[1][column])


def test_validation_runs_every_n_epochs_and_at_the_last_with_nan_between(tmp_path):
    run_dir = tmp_path / "run"
    recipe = Recipe(**dict(TINY, epochs=3, validation_every=2))
    assert train.validation_epochs(recipe) == [2, 3]
    train.train(recipe, str(run_dir))
    train.resume(str(run_dir), epochs=6)  # validates epochs 4 and 6, appending to the log
    with open(run_dir / "training_log.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3", "4", "5"]
    validated = [np.isfinite(float(row["val_psnr"])) for row in rows]
    assert validated == [False, True, True, True, False, True]
    assert all(np.isfinite(float(rows[1][f"val_{name}"])) for name in TEST_METRICS)
    assert all(np.isfinite(float(row["cpu_minutes"])) for row in rows)  # columns did not shift


@pytest.mark.parametrize(
    "change, message",
    [
        ({"crop_size": 30}, "crop_size must be a multiple of 4. Received: crop_size=30"),
        ({"epochs": "3"}, "epochs must be int. Received: epochs='3'"),
        ({"jit_compile": 1}, "jit_compile must be bool. Received: jit_compile=1"),
        ({"architecture": "unet"}, "architecture must be one of ['resnet', 'mobile', "),
        ({"pixel_loss": "l3"}, "pixel_loss must be one of ['log_mse', 'mse']. Received: "),
        ({"blur_fractions": (0.5, 2.0)}, "blur_fractions must be in (0, 1]. Received: 2.0"),
        ({"warmup_epochs": 400}, "warmup_epochs must be in [0, epochs=300]. Received: "),
        ({"max_cpu_minutes": 0.0}, "max_cpu_minutes must be > 0. Received: max_cpu_minutes=0.0"),
        ({"soft_ratio": 1.5}, "soft_ratio must be in [0, 1]. Received: soft_ratio=1.5"),
        (
            {"depth_of_field_ratio": 0.6, "soft_ratio": 0.3, "misfocus_ratio": 0.2},
            "depth_of_field_ratio + soft_ratio + misfocus_ratio must be at most 1. Received: "
            "0.6 + 0.3 + 0.2",
        ),
        ({"sharp_dirs": ("a", 3)}, "sharp_dirs must be tuple[str, ...]. Received: "),
    ],
)
def test_each_bad_field_is_a_one_line_error_naming_it(change, message):
    with pytest.raises(ValueError) as raised:
        Recipe().replace(**change)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_unknown_fields_and_presets_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown recipe field 'crop'; the fields are paired_"):
        Recipe().replace(crop=3)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 3, "mixed_precision": True}))
    with pytest.raises(ValueError, match=rf"^{path}: unknown recipe field 'mixed_precision'"):
        Recipe.from_json(str(path))
    path.write_text(json.dumps({"epochs": 0}))
    with pytest.raises(ValueError, match=rf"^{path}: epochs must be >= 1. Received: epochs=0$"):
        Recipe.from_json(str(path))
    with pytest.raises(ValueError, match=r"^Unknown recipe preset 'fast'; the presets are quick"):
        get_preset("fast")


def test_a_recipe_is_frozen_and_keeps_sequences_as_tuples():
    recipe = Recipe(sharp_dirs=["a", "b"], blur_exposures=[None, 0.005])
    assert recipe.sharp_dirs == ("a", "b") and recipe.blur_exposures == (None, 0.005)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 3
    assert Recipe(vgg_weights="none").vgg_weights is None


def test_train_takes_only_a_recipe(tmp_path):
    with pytest.raises(TypeError, match="train\\(\\) takes a Recipe. Received: dict"):
        train.train(dict(TINY), str(tmp_path))
