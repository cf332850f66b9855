"""Tests for `train()` and `python -m keras_deblur.train` on tiny configurations."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deblur import callbacks as callbacks_lib
from keras_deblur import losses, train
from keras_deblur.data.images import write_image
from keras_deblur.recipe import PRESETS, Recipe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "crop_size": 32,
    "epochs": 2,
    "steps_per_epoch": 2,
    "num_res_blocks": 1,
    "num_filters": 8,
    "critic_steps": 1,
    "vgg_weights": None,
    "num_samples": 1,
    "precision": "float32",  # the same arithmetic on every CPU class ("auto" is tested alone)
}
TINY_FLAGS = [
    "--crop_size=32",
    "--epochs=2",
    "--steps_per_epoch=2",
    "--num_res_blocks=1",
    "--num_filters=8",
    "--critic_steps=1",
    "--vgg_weights=none",
    "--num_samples=1",
    "--precision=float32",
]


def _run_cli(*flags, cwd=REPO, **env_overrides):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3", **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "keras_deblur.train", *flags],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
        env=env,
    )


def _checkpoint_value(path, fragment):
    reader = tf.train.load_checkpoint(path)
    names = [name for name in reader.get_variable_to_shape_map() if fragment in name]
    assert len(names) == 1, names
    return int(reader.get_tensor(names[0]))


def _csv_rows(run_dir):
    with open(os.path.join(run_dir, "training_log.csv")) as file:
        return list(csv.DictReader(file))


def test_cli_trains_end_to_end_and_writes_every_output(tmp_path):
    run_dir = tmp_path / "run"
    # All of TensorFlow's C++ log, with oneDNN's graph rewrites on as on AVX512-VNNI CPUs.
    result = _run_cli(
        *TINY_FLAGS, f"--output_dir={run_dir}", TF_CPP_MIN_LOG_LEVEL="0", TF_ENABLE_ONEDNN_OPTS="1"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Run directory:      {run_dir}" in result.stdout
    # A healthy run prints no ERROR line (keras_deblur.native_log drops TF's harmless ones).
    errors = re.findall(r"^[EF]\d{4} .*", result.stderr, re.MULTILINE)
    assert not errors, errors

    config = json.loads((run_dir / "config.json").read_text())
    assert config["crop_size"] == 32 and config["critic_steps"] == 1
    assert config["vgg_weights"] is None and config["steps_per_epoch"] == 2
    # config.json is exactly the recipe: the quick preset with the flags applied.
    assert train.load_recipe(str(run_dir)) == PRESETS["quick"].replace(**TINY)
    assert json.loads((run_dir / "run_info.json").read_text())["steps_per_epoch"] == 2
    rows = _csv_rows(run_dir)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(np.isfinite(float(row["val_psnr"])) for row in rows)
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert latest.endswith("ckpt-2")
    assert _checkpoint_value(latest, "g_optimizer/_iterations") == 4
    assert _checkpoint_value(latest, "d_optimizer/_iterations") == 4
    assert _checkpoint_value(latest, "epoch/") == 2
    generator = keras.saving.load_model(run_dir / "best_generator.keras")
    assert generator(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 32, 32, 3)
    assert (run_dir / "final_generator.keras").exists()
    assert (run_dir / "samples" / "epoch_002.png").exists()
    for name in ("train", "validation", "images"):
        assert os.listdir(run_dir / "logs" / name), name


def _one_line_error(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_missing_directory_is_a_one_line_error(tmp_path):
    missing = tmp_path / "no_such_dir"
    line = _one_line_error(_run_cli(f"--paired_dirs={missing}", f"--output_dir={tmp_path}"))
    assert line == f"error: {missing}: directory not found (--paired_dirs)"


def test_crop_larger_than_the_images_is_a_one_line_error(tmp_path):
    photos = tmp_path / "photos"
    write_image(str(photos / "small.png"), np.zeros((40, 48, 3), np.uint8))
    line = _one_line_error(
        _run_cli(f"--sharp_dirs={photos}", "--crop_size=64", f"--output_dir={tmp_path / 'r'}")
    )
    assert "small.png: image is 48x40, smaller than crop_size=64" in line


def test_zero_critic_steps_is_a_one_line_error(tmp_path):
    line = _one_line_error(_run_cli("--critic_steps=0", f"--output_dir={tmp_path}"))
    assert line == "error: critic_steps must be >= 1. Received: critic_steps=0"


def test_interrupt_saves_then_resume_continues_then_nan_keeps_last_good(tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")

    # Ctrl-C in the middle of the first epoch, after 2 generator steps.
    def interrupt(self, batch, logs=None):
        if batch == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(callbacks_lib.StopOnNonFiniteLoss, "on_train_batch_end", interrupt)
        with pytest.raises(KeyboardInterrupt):
            train.train(Recipe(**TINY), run_dir)
    saved = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    assert saved is not None
    assert _checkpoint_value(saved, "g_optimizer/_iterations") == 2
    assert _checkpoint_value(saved, "epoch/") == 0

    # Resume: the optimizer counters continue from 2, both epochs are trained.
    result = train.resume(run_dir)
    assert result.stopped_early is None
    assert _checkpoint_value(result.checkpoint, "g_optimizer/_iterations") == 6
    assert _checkpoint_value(result.checkpoint, "epoch/") == 2
    good = result.checkpoint

    # A NaN loss stops the run with a message and keeps the last good checkpoint.
    def nan_loss(self, y_true, y_pred):
        return keras.ops.mean(y_pred, axis=(1, 2, 3)) * np.nan

    monkeypatch.setattr(losses.PerceptualLoss, "call", nan_loss)
    result = train.resume(run_dir, epochs=3)
    assert result.stopped_early.startswith("Training diverged at epoch 3, step 1")
    assert result.checkpoint == good
    assert result.final_generator is None


def test_warmup_epochs_train_without_the_critic_then_the_gan_takes_over(tmp_path):
    run_dir = str(tmp_path / "run")
    recipe = Recipe(
        **dict(TINY, num_filters=8, num_res_blocks=1),
        architecture="mobile",
        warmup_epochs=1,
        content_weight=0.0,
        pixel_weight=1.0,
        sharp_dirs=["embedded"],
        blur_exposures=[None, 0.005],
        blur_fractions=[1.0],
    )
    result = train.train(recipe, run_dir)
    history = result.history
    assert history["critic_loss"][0] == 0.0 and history["critic_loss"][1] != 0.0
    assert [row["epoch"] for row in _csv_rows(run_dir)] == ["0", "1"]  # both phases logged
    assert all(value > 0 for value in history["pixel_loss"])
    assert history["perceptual_loss"] == [0.0, 0.0]  # no VGG19 was built or used
    # The critic stepped once per generator step, in the GAN epoch only.
    assert _checkpoint_value(result.checkpoint, "g_optimizer/_iterations") == 4
    assert _checkpoint_value(result.checkpoint, "d_optimizer/_iterations") == 2
    generator = keras.saving.load_model(result.final_generator, safe_mode=True)
    assert generator.name == "mobile_deblur_generator"
    config = json.loads(open(os.path.join(run_dir, "config.json")).read())
    assert config["architecture"] == "mobile" and config["blur_exposures"] == [None, 0.005]


def test_cli_checks_the_warmup_and_parses_the_mobile_preset_and_blur_lists(tmp_path):
    line = _one_line_error(
        _run_cli("--epochs=2", "--warmup_epochs=3", f"--output_dir={tmp_path / 'r'}")
    )
    assert line == "error: warmup_epochs must be in [0, epochs=2]. Received: warmup_epochs=3"
    run_dir = tmp_path / "mobile"
    result = _run_cli(
        "--preset=mobile",
        "--num_filters=8",
        "--num_res_blocks=1",
        "--epochs=2",
        "--warmup_epochs=1",
        "--steps_per_epoch=1",
        "--crop_size=32",
        "--batch_size=1",
        "--critic_steps=1",
        "--nojit_compile",
        "--num_samples=1",
        "--sharp_dirs=embedded",
        "--blur_exposures=uniform,0.005",
        f"--output_dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["architecture"] == "mobile" and config["pixel_loss"] == "log_mse"
    assert config["blur_exposures"] == [None, 0.005] and config["blur_fractions"] == [1.0]
    assert config["vgg_weights"] is None and config["content_weight"] == 0.0
    assert config["procedural_ratio"] == 0.3 and config["augment"] is True


# One content-only step from the shipped mobile generator; TINY's sizes do not fit it, so a
# test that means to fine-tune resets num_filters and num_res_blocks.
FINE_TUNE_MOBILE = dict(
    TINY,
    architecture="mobile",
    epochs=1,
    steps_per_epoch=1,
    warmup_epochs=1,
    content_weight=0.0,
    pixel_weight=1.0,
    init_weights="mobile",
)


def test_init_weights_fine_tunes_the_pretrained_generator_and_refuses_other_sizes(tmp_path):
    from keras_deblur.models.loading import load_generator

    with pytest.raises(ValueError, match=r"^mobile: init_weights do not fit"):
        train.train(Recipe(**FINE_TUNE_MOBILE), str(tmp_path / "small"))
    # Learning rate 0: the generator that comes out is the one that went in.
    result = train.train(
        Recipe(**dict(FINE_TUNE_MOBILE, num_filters=None, num_res_blocks=None, learning_rate=0.0)),
        str(tmp_path / "run"),
    )
    shipped = load_generator("mobile").get_weights()
    tuned = keras.saving.load_model(result.final_generator, safe_mode=True).get_weights()
    assert len(tuned) == len(shipped)
    assert all(np.array_equal(a, b) for a, b in zip(tuned, shipped, strict=True))
    assert any(np.abs(w).max() > 0 for w in tuned[-2:])  # not the identity initialisation


def test_init_weights_grows_the_generator_by_residual_blocks_without_changing_its_output(tmp_path):
    from keras_deblur.models.loading import load_generator

    recipe = Recipe(
        **dict(
            FINE_TUNE_MOBILE,
            num_filters=None,
            num_res_blocks=10,  # the shipped generator has 8
            learning_rate=0.0,
        )
    )
    result = train.train(recipe, str(tmp_path / "grown"))
    shipped = load_generator("mobile")
    grown = keras.saving.load_model(result.final_generator, safe_mode=True)
    assert grown.count_params() > shipped.count_params()
    blurred = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    expected = shipped(blurred).numpy()
    assert np.abs(expected - blurred).max() > 1e-2  # the shipped weights are not the identity
    np.testing.assert_allclose(grown(blurred).numpy(), expected, atol=1e-5)


def test_log_mse_mobile_run_snapshots_every_epoch_and_stops_at_its_cpu_budget(tmp_path):
    run_dir = str(tmp_path / "run")
    recipe = Recipe(
        **dict(TINY, epochs=3, num_filters=8, num_res_blocks=1),
        architecture="mobile",
        warmup_epochs=3,
        content_weight=0.0,
        pixel_weight=1.0,
        pixel_loss="log_mse",
        snapshots=True,
        max_cpu_minutes=1e-6,  # spent within the first epoch
        sharp_dirs=["embedded"],
    )
    result = train.train(recipe, run_dir)
    rows = _csv_rows(run_dir)
    assert [row["epoch"] for row in rows] == ["0"]  # stopped after one of three epochs
    assert int(rows[0]["steps"]) == 2 and float(rows[0]["cpu_minutes"]) > 0
    assert all(value < 0 for value in result.history["pixel_loss"])  # a loss in dB
    snapshot = keras.saving.load_model(
        os.path.join(run_dir, "snapshots", "epoch_001.keras"), safe_mode=True
    )
    assert snapshot.name == "mobile_deblur_generator"
    assert sorted(os.listdir(os.path.join(run_dir, "snapshots"))) == ["epoch_001.keras"]
    config = json.loads(open(os.path.join(run_dir, "config.json")).read())
    assert config["pixel_loss"] == "log_mse" and config["max_cpu_minutes"] == 1e-6


def test_recipe_data_fields_reach_the_training_streams(tmp_path, monkeypatch):
    from keras_deblur.data import datasets

    calls = {}
    for name in ("synthetic_dataset", "procedural_dataset", "mix_procedural"):
        real = getattr(datasets, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.setdefault(_name, []).append(kwargs)
            return _real(*args, **kwargs)

        monkeypatch.setattr(datasets, name, spy)
    recipe = Recipe(
        **dict(TINY, epochs=1, architecture="mobile", content_weight=0.0, pixel_weight=1.0),
        warmup_epochs=1,
        procedural_ratio=0.5,
        augment=True,
        noise_ratio=0.25,
        jpeg_ratio=0.75,
        unblurred_ratio=0.1,
    )
    result = train.train(recipe, str(tmp_path / "run"))
    assert np.isfinite(result.history["pixel_loss"][0])
    training = calls["synthetic_dataset"][0]  # the training stream comes first
    assert training["augment"] is True
    assert (training["noise_ratio"], training["jpeg_ratio"]) == (0.25, 0.75)
    assert calls["procedural_dataset"][0]["unblurred_ratio"] == 0.1
    assert calls["mix_procedural"][0]["procedural_ratio"] == 0.5


def test_auto_precision_is_bfloat16_where_it_pays_and_a_bfloat16_run_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "bfloat16_pays", lambda jit_compile: False)
    assert train.resolve_precision("auto")[0] == "float32"
    monkeypatch.setattr(train, "bfloat16_pays", lambda jit_compile: not jit_compile)
    assert train.resolve_precision("auto") == ("mixed_bfloat16", f"auto: CPU {train.cpu_isa()}")
    assert train.resolve_precision("auto", jit_compile=True)[0] == "float32"
    assert train.resolve_precision("float32") == ("float32", "asked for")
    recipe = Recipe(**dict(TINY, epochs=1, precision="auto", content_weight=0.0, pixel_weight=1.0))
    result = train.train(recipe.replace(warmup_epochs=1), str(tmp_path / "run"))
    assert np.isfinite(result.history["pixel_loss"][0])
    info = json.loads(open(os.path.join(result.run_dir, "run_info.json")).read())
    assert info["dtype_policy"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    # Saved generators compute in float32 whatever the run's policy.
    final = keras.saving.load_model(result.final_generator, safe_mode=True)
    assert {layer.dtype_policy.name for layer in final.layers} == {"float32"}
    # Resumed on a machine where "auto" means float32, the run keeps its bf16.
    monkeypatch.setattr(train, "bfloat16_pays", lambda jit_compile: False)
    train.resume(result.run_dir, epochs=2, warmup_epochs=2)
    info = json.loads(open(os.path.join(result.run_dir, "run_info.json")).read())
    assert info["dtype_policy"] == "mixed_bfloat16"


def test_max_pixels_applies_to_the_data_check_and_is_restored_after(tmp_path, monkeypatch):
    from keras_deblur.data import images

    photos = tmp_path / "photos"
    write_image(str(photos / "big.png"), np.zeros((64, 80, 3), np.uint8))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)  # a budget the photo is over
    recipe = Recipe(**dict(TINY, epochs=1), sharp_dirs=[str(photos)])
    with pytest.raises(
        ValueError, match="big.png: header claims 80x64 = 5,120 pixels, over the 1,000"
    ):
        train.train(recipe, str(tmp_path / "refused"))
    result = train.train(recipe.replace(max_pixels=1_000_000), str(tmp_path / "run"))
    assert result.final_generator is not None
    assert images.MAX_PIXELS == 1000


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_even_in_a_background_run(tmp_path, signum):
    """A shell's background job inherits SIGINT ignored; kill and Ctrl-C must still save."""
    run_dir = tmp_path / "run"
    flags = [*TINY_FLAGS, "--epochs=500", "--steps_per_epoch=1", f"--output_dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_deblur.train", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(run_dir / "checkpoints" / "ckpt-2.index"):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (
        "Interrupted; a checkpoint was saved (resume with --resume)."
    )
    epochs = _checkpoint_value(tf.train.latest_checkpoint(str(run_dir / "checkpoints")), "epoch/")
    assert 2 <= epochs < 500
