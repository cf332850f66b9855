"""Fuzzes a run's `config.json` as `--resume` reads it (`train.load_recipe`, `Recipe.from_json`).

Contract: a `Recipe` whose float fields are finite and that `to_json` writes
and `from_json` reads back equal, or `FileNotFoundError`/`ValueError` in one
line naming the file.

    python tests/fuzz/fuzz_recipe.py -max_total_time=600 corpus/recipe
"""

import json
import math
import os

import atheris
import harness

with atheris.instrument_imports(include=["keras_deblur.recipe", "keras_deblur.train", "json"]):
    from keras_deblur.recipe import PRESETS, Recipe
    from keras_deblur.train import RECIPE_FILE, load_recipe

_RUN_DIR = harness.scratch_dir()
_PATH = os.path.join(_RUN_DIR, RECIPE_FILE)
_COPY = os.path.join(_RUN_DIR, "written_back.json")


def one_input(data):
    harness.write(_PATH, data)
    try:
        recipe = load_recipe(_RUN_DIR)
    except harness.documented_errors("recipe") as error:
        harness.check_error(error, "recipe", (_PATH,))
        return
    assert isinstance(recipe, Recipe)
    for name, value in recipe.to_dict().items():
        for item in value if isinstance(value, list) else [value]:
            assert not isinstance(item, float) or math.isfinite(item), (name, value)
    recipe.to_json(_COPY)
    assert Recipe.from_json(_COPY) == recipe, "what to_json wrote reads back different"


def seeds():
    """Every preset's config.json, the defaults, and a few near misses."""
    found = {
        f"{name}.json": json.dumps(recipe.to_dict(), indent=2).encode()
        for name, recipe in PRESETS.items()
    }
    found["defaults.json"] = json.dumps(Recipe().to_dict()).encode()
    found["empty_object.json"] = b"{}"
    found["list.json"] = b"[]"
    found["string_epochs.json"] = b'{"epochs": "3", "blur_exposures": [null, 0.005]}'
    found["unknown_field.json"] = b'{"epoch": 3}'
    found["truncated.json"] = found["quick.json"][:100]
    return found


if __name__ == "__main__":
    harness.main(one_input, seeds, custom_mutator=harness.json_mutator)
