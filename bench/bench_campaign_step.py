"""The mobile training step at the hardware's speed: bare step and whole campaign, by precision.

    python bench/bench_campaign_step.py [--steps 25] [--xla] [--rounds 1] [--baseline_ref REF]
        [--open_photos data/open_photos] [--pairs 400] [--skip_campaign] [--json]

Measures, in one run on this machine (shared machines are noisy: only the
ratios mean anything, and every A/B is interleaved):

(a) the bare step: one `DeblurGAN.train_step` of `--preset=mobile` (the mobile
    generator, batch 8 of 128x128, per-crop log-MSE, Adam, no XLA) on a batch
    held in memory, float32 against mixed_bfloat16, alternating the two step
    by step; medians over `--steps` steps after warm-up (`--xla`: also
    XLA-compiled, which on CPUs without AMX gains nothing from bf16);
(a') the fit loop: the same step in `keras.Model.fit` on that batch held in
    memory (repeated), with the campaign's per-batch callbacks and progress
    bar, against the bare step, alternating, in the precision "auto" picks:
    what Keras' loop itself adds per step, apart from the input pipeline;
(b) inference: the shipped mobile generator on a 256x256 blurred photo crop,
    float32 against mixed_bfloat16, alternating: time, each one's gain over
    the blurred input, and how far apart (PSNR) their outputs are;
(c) the campaign: `python -m keras_deblur.train --preset=mobile` as a
    subprocess, with its data pipeline (embedded photos + dead leaves; with
    `--open_photos` also the campaign's photos), callbacks, checkpoints and
    validation (Keras validation, and with `--open_photos` the fixed
    validation crops, which need those photos), for each
    configuration in turn, `--rounds` times. Each run trains 5 epochs of 100
    steps and validates after the 3rd and the 5th, and the campaign's spacing
    (`--validation_every=10`: 9 plain epochs, then one that validates) is
    composed from the epochs' `wall_minutes` in the run's `training_log.csv`:
    epoch 1 traces and is dropped; epoch 2 only trains; epoch 3 adds Keras'
    validation pass; epoch 4 adds the fixed validation's scorer of epoch 3
    (it runs after the clock callback, so its time lands in the next epoch);
(d) the input pipeline alone: CPU milliseconds (all threads) per training
    pair of the campaign's `tf.data` training stream, after a warm-up that
    decodes most photos into the cache, for this tree and with
    `--baseline_ref` also REF's, alternating `--rounds` times (`--pairs 0`
    skips it). Eight pairs make a step, so on a 2-core machine about half
    of 8 x that lands on each step's wall time.

Configurations of (c): this tree with --precision=auto (what it picks here
is printed) and with --precision=float32; with `--baseline_ref REF` instead
of the latter, REF's code (a `git archive` of REF, e.g. `main` before a
change) with --precision=auto ("today's configuration") and with
--precision=mixed_bfloat16 (which splits the gain into precision and the
rest). The gate ratio is this tree's auto over the baseline (REF's auto, or
this tree's float32 without a REF). Wall time on a shared machine moves with
the other work on it, so each run also reports its CPU seconds per step (all
threads; the fixed validation's scorer excluded) and the load average.
"""

import argparse
import contextlib
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_train import _batch, _make_gan  # noqa: E402
from yardstick import cpu_isa  # noqa: E402

from keras_deblur.data.embedded import embedded_photo_paths  # noqa: E402
from keras_deblur.data.images import read_image  # noqa: E402
from keras_deblur.data.motion_blur import synthesize_blur  # noqa: E402
from keras_deblur.inference import from_model_range, to_model_range  # noqa: E402
from keras_deblur.metrics import psnr  # noqa: E402
from keras_deblur.models import build_mobile_generator, load_generator  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")
# The campaign's epoch and validation spacing (README's mobile command).
CAMPAIGN_STEPS_PER_EPOCH = 100
CAMPAIGN_VALIDATION_EVERY = 10


def _with_policy(policy, build):
    """Builds under a dtype policy (layers keep the policy they were built with)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(previous)


def _alternate(functions, steps, warmup=3):
    """Median wall and CPU (all threads) seconds of each function, called in turn after warm-up.

    Returns `{name: wall seconds, name + "_cpu": CPU seconds}`.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for _ in range(steps):
        for name, fn in functions.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    results = {name: statistics.median(values) for name, values in times.items()}
    results.update({f"{name}_cpu": statistics.median(values) for name, values in cpu.items()})
    return results


def measure_bare_step(steps, xla=False):
    """Median seconds per bare mobile content step in each precision (and with XLA), alternating."""
    blurred, sharp = (tf.constant(x) for x in _batch(128, 8))
    functions = {}
    for jit_compile in (False, True) if xla else (False,):
        for policy in PRECISIONS:
            gan = _with_policy(policy, lambda jit=jit_compile: _make_gan(jit, "mobile"))
            step = tf.function(gan.train_step, jit_compile=jit_compile)
            name = policy + ("_xla" if jit_compile else "")
            functions[name] = lambda step=step: step((blurred, sharp))["pixel_loss"].numpy()
    return _alternate(functions, steps)


FIT_STEPS = 25  # steps per fit call of (a'), so its per-call setup is part of the figure


def measure_fit_loop(steps):
    """Median wall and CPU seconds per step: bare, and in `fit` with the campaign's callbacks."""
    from keras_deblur.callbacks import StopOnNonFiniteLoss, TrainingClock
    from keras_deblur.train import resolve_precision

    policy = resolve_precision("auto")[0]
    gan = _with_policy(policy, lambda: _make_gan(False, "mobile"))
    batch = tuple(tf.constant(x) for x in _batch(128, 8))
    step = tf.function(gan.train_step)
    in_memory = tf.data.Dataset.from_tensors(batch).repeat()

    def bare():
        for _ in range(FIT_STEPS):
            step(batch)["pixel_loss"].numpy()

    def fit():
        with contextlib.redirect_stdout(io.StringIO()):  # the progress bar, as in a run
            gan.fit(
                in_memory,
                steps_per_epoch=FIT_STEPS,
                verbose=1,
                callbacks=[StopOnNonFiniteLoss(), TrainingClock()],
            )

    results = _alternate({"bare": bare, "fit": fit}, max(steps // FIT_STEPS, 3), warmup=1)
    results = {name: value / FIT_STEPS for name, value in results.items()}
    results["dtype_policy"] = policy
    return results


def _blurred_photo(size):
    """A `size`x`size` uint8 crop of an embedded validation photo, blurred, and the crop."""
    photo = read_image(embedded_photo_paths("validation")[0])[:, :, :3]
    top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
    sharp = photo[top : top + size, left : left + size]
    blurred, _ = synthesize_blur(sharp, np.random.default_rng(0), exposure=0.005)
    return blurred, sharp


def measure_inference(steps, size=256):
    """The shipped mobile generator on one `size`x`size` photo crop, float32 against bf16.

    Returns median seconds per call in each precision (alternating), the PSNR
    gain of each over the blurred input, and the PSNR between the two outputs.
    """
    blurred, sharp = _blurred_photo(size)
    inputs = tf.constant(to_model_range(blurred)[None])
    weights = load_generator("mobile").get_weights()
    functions = {}
    for policy in PRECISIONS:
        generator = _with_policy(policy, build_mobile_generator)
        generator.set_weights(weights)
        functions[policy] = tf.function(lambda g=generator: g(inputs, training=False))
    results = _alternate({p: lambda f=f: f().numpy() for p, f in functions.items()}, steps)
    outputs = {p: from_model_range(np.asarray(f()[0], np.float32)) for p, f in functions.items()}
    for policy, output in outputs.items():
        results[f"{policy}_gain_db"] = psnr(sharp, output) - psnr(sharp, blurred)
    results["float32_vs_bf16_psnr_db"] = psnr(outputs["float32"], outputs["mixed_bfloat16"])
    return results


def campaign_flags(open_photos=None):
    """The campaign's `keras_deblur.train` flags (README's mobile command), short and benchable.

    With `open_photos` (the folder `keras_deblur.data.open_photos` writes) the
    campaign's photos and fixed validation crops; without, the embedded photos
    and no fixed validation (it needs the open photos).
    """
    flags = [
        "--preset=mobile",
        "--init_weights=mobile",
        "--log_mse_floor=3e-3",
        "--unblurred_ratio=0.35",
        "--blur_exposures=uniform,0.005",
        "--epochs=5",
        "--warmup_epochs=5",
        f"--steps_per_epoch={CAMPAIGN_STEPS_PER_EPOCH}",
        "--validation_every=3",
    ]
    if open_photos:
        train, val = os.path.join(open_photos, "train"), os.path.join(open_photos, "val")
        flags += [
            f"--sharp_dirs=embedded,{train}",
            f"--val_sharp_dirs={val}",
            f"--validation_photos={val},embedded",
        ]
    else:
        flags.append("--sharp_dirs=embedded")
    return flags


def _epoch_minutes(run_dir, column):
    """Minutes of each epoch in a column of the run's training log (`wall_minutes`, ...)."""
    with open(os.path.join(run_dir, "training_log.csv"), newline="") as file:
        ends = [float(row[column]) for row in csv.DictReader(file)]
    return [end - start for start, end in zip([0.0] + ends, ends, strict=False)]


def run_campaign(tree, precision, flags):
    """Trains in `tree`'s code; returns campaign steps per wall minute and the epochs' minutes.

    See the module's docstring for which epoch holds what: a validation costs
    `epoch_3 + epoch_4 - 2 * epoch_2`, and the campaign spends
    `CAMPAIGN_VALIDATION_EVERY * epoch_2` plus one validation per that many epochs.
    """
    with tempfile.TemporaryDirectory() as run_dir:
        command = [sys.executable, "-m", "keras_deblur.train", *flags]
        command += [f"--precision={precision}", f"--output_dir={run_dir}"]
        env = dict(os.environ, PYTHONPATH=tree)
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        load = os.getloadavg()[0]
        minutes = _epoch_minutes(run_dir, "wall_minutes")
        cpu_minutes = _epoch_minutes(run_dir, "cpu_minutes")
        with open(os.path.join(run_dir, "run_info.json")) as file:
            policy = json.load(file)["dtype_policy"]
    plain = minutes[1]
    validation = minutes[2] + minutes[3] - 2 * plain
    spent = CAMPAIGN_VALIDATION_EVERY * plain + validation
    return {
        "dtype_policy": policy,
        "epoch_minutes": minutes,
        "seconds_per_step_plain": 60 * plain / CAMPAIGN_STEPS_PER_EPOCH,
        "cpu_seconds_per_step_plain": 60 * cpu_minutes[1] / CAMPAIGN_STEPS_PER_EPOCH,
        "load_average": load,
        "validation_seconds": 60 * validation,
        "steps_per_wall_minute": CAMPAIGN_VALIDATION_EVERY * CAMPAIGN_STEPS_PER_EPOCH / spent,
    }


# Run in a tree's code: CPU ms per pair of the campaign's training stream (the flags in argv).
PAIRS_SCRIPT = """
import inspect, os, sys, time
from absl import flags
from keras_deblur import train
values = train.define_flags(flags.FlagValues())
values(["pairs", *sys.argv[3:]])
recipe = train.recipe_from_flags(values)
# Older trees (58d5d1f) take the recipe alone and read its seed themselves.
seed = (recipe.seed,) if len(inspect.signature(train._training_dataset).parameters) > 1 else ()
pairs = iter(train._training_dataset(recipe, *seed).repeat())
for _ in range(int(sys.argv[2])):
    next(pairs)
count = int(sys.argv[1])
start = time.process_time()
for _ in range(count):
    next(pairs)
print(1e3 * (time.process_time() - start) / count, flush=True)
os._exit(0)  # tf.data's threads, still mid-pair, can hang a normal interpreter exit
"""
PAIRS_WARMUP = 300


def measure_pairs(trees, flags, count, rounds):
    """CPU ms per training pair of each tree `name -> folder`, alternating; medians."""
    runs = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            command = [sys.executable, "-c", PAIRS_SCRIPT, str(count), str(PAIRS_WARMUP), *flags]
            env = dict(os.environ, PYTHONPATH=tree)
            done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"pairs in {tree} failed:\n{done.stderr[-3000:]}")
            runs[name].append(float(done.stdout.split()[-1]))
            print(f"  pairs {name}: {runs[name][-1]:.2f} CPU ms", file=sys.stderr, flush=True)
    result = {name: statistics.median(values) for name, values in runs.items()}
    result["load_average"] = os.getloadavg()[0]
    return result


def _export_tree(ref, folder):
    """`git archive` of `ref` (the code only) into `folder`; returns `folder`."""
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def measure_campaign(configurations, flags, rounds):
    """Each configuration `name -> (tree, precision)` in turn, `rounds` times; medians."""
    runs = {name: [] for name in configurations}
    for _ in range(rounds):
        for name, (tree, precision) in configurations.items():
            runs[name].append(run_campaign(tree, precision, flags))
            print(f"  {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    results = {}
    for name, values in runs.items():
        results[name] = dict(values[0])
        for key in (
            "seconds_per_step_plain",
            "cpu_seconds_per_step_plain",
            "validation_seconds",
            "steps_per_wall_minute",
        ):
            results[name][key] = statistics.median(v[key] for v in values)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25, help="Bare steps per precision.")
    parser.add_argument("--rounds", type=int, default=1, help="Campaign runs per configuration.")
    parser.add_argument("--baseline_ref", help="Git ref whose code is today's configuration.")
    parser.add_argument("--open_photos", help="Folder from keras_deblur.data.open_photos.")
    parser.add_argument("--xla", action="store_true", help="Also time the bare step with XLA.")
    parser.add_argument("--pairs", type=int, default=400, help="Pairs timed per tree; 0 skips.")
    parser.add_argument("--skip_campaign", action="store_true")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()

    report = {"cpu": cpu_isa(), "tensorflow": tf.__version__, "keras": keras.__version__}
    report["bare_step"] = measure_bare_step(args.steps, args.xla)
    report["fit_loop"] = measure_fit_loop(args.steps)
    report["inference_256"] = measure_inference(args.steps)
    if not args.json:
        print_step(report)
    with tempfile.TemporaryDirectory() as baseline:
        tree = _export_tree(args.baseline_ref, baseline) if args.baseline_ref else None
        flags = campaign_flags(args.open_photos)
        report["campaign_flags"] = flags
        if args.pairs:
            trees = {"this_tree": REPO, **({"baseline": tree} if tree else {})}
            report["pairs_cpu_ms"] = measure_pairs(trees, flags, args.pairs, args.rounds)
            if not args.json:
                print_pairs(report["pairs_cpu_ms"], args.baseline_ref)
        if not args.skip_campaign:
            configurations = {"this_tree_auto": (REPO, "auto")}
            if tree:
                configurations["baseline_auto"] = (tree, "auto")
                configurations["baseline_bfloat16"] = (tree, "mixed_bfloat16")
            else:
                configurations["this_tree_float32"] = (REPO, "float32")
            report["campaign"] = measure_campaign(configurations, flags, args.rounds)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.skip_campaign:
        print_campaign(report, args.baseline_ref)


def print_pairs(pairs, baseline_ref):
    line = f"input pipeline, CPU ms per training pair: this tree {pairs['this_tree']:.2f}"
    if "baseline" in pairs:
        line += (
            f", {baseline_ref} {pairs['baseline']:.2f} "
            f"({pairs['baseline'] / pairs['this_tree']:.2f}x)"
        )
    print(f"{line}; load average {pairs['load_average']:.1f}")


def print_step(report):
    bare = report["bare_step"]
    print(f"CPU {report['cpu']}, TensorFlow {report['tensorflow']}, Keras {report['keras']}")
    print(
        f"bare mobile step (batch 8 of 128x128, no XLA): float32 {bare['float32']:.3f} s "
        f"({bare['float32_cpu']:.3f} CPU s), mixed_bfloat16 {bare['mixed_bfloat16']:.3f} s "
        f"({bare['mixed_bfloat16_cpu']:.3f} CPU s): {bare['float32'] / bare['mixed_bfloat16']:.2f}x"
    )
    if "float32_xla" in bare:
        print(
            f"  with XLA: float32 {bare['float32_xla']:.3f} s, mixed_bfloat16 "
            f"{bare['mixed_bfloat16_xla']:.3f} s: "
            f"{bare['float32_xla'] / bare['mixed_bfloat16_xla']:.2f}x"
        )
    loop = report["fit_loop"]
    print(
        f"the step in fit ({loop['dtype_policy']}, campaign callbacks, batch in memory): "
        f"{loop['fit']:.3f} s ({loop['fit_cpu']:.3f} CPU s) against bare {loop['bare']:.3f} s "
        f"({loop['bare_cpu']:.3f} CPU s): the loop adds {1e3 * (loop['fit'] - loop['bare']):+.1f} "
        f"ms wall, {1e3 * (loop['fit_cpu'] - loop['bare_cpu']):+.1f} CPU ms per step"
    )
    inference = report["inference_256"]
    print(
        f"mobile inference 256x256: float32 {1e3 * inference['float32']:.1f} ms, "
        f"mixed_bfloat16 {1e3 * inference['mixed_bfloat16']:.1f} ms "
        f"({inference['float32'] / inference['mixed_bfloat16']:.2f}x); gain over the "
        f"blurred input {inference['float32_gain_db']:+.3f} / "
        f"{inference['mixed_bfloat16_gain_db']:+.3f} dB; outputs "
        f"{inference['float32_vs_bf16_psnr_db']:.1f} dB apart"
    )


def print_campaign(report, baseline_ref):
    campaign = report["campaign"]
    for name, result in campaign.items():
        print(
            f"campaign {name} ({result['dtype_policy']}): "
            f"{result['steps_per_wall_minute']:.0f} steps per wall minute "
            f"({result['seconds_per_step_plain']:.3f} s, "
            f"{result['cpu_seconds_per_step_plain']:.3f} CPU s per step between validations, "
            f"validation {result['validation_seconds']:.1f} s every "
            f"{CAMPAIGN_VALIDATION_EVERY * CAMPAIGN_STEPS_PER_EPOCH} steps; "
            f"load average {result['load_average']:.1f})"
        )
    ours = campaign["this_tree_auto"]
    baseline = campaign["baseline_auto" if baseline_ref else "this_tree_float32"]
    against = f"{baseline_ref}'s --precision=auto" if baseline_ref else "float32"
    wall = ours["steps_per_wall_minute"] / baseline["steps_per_wall_minute"]
    cpu = baseline["cpu_seconds_per_step_plain"] / ours["cpu_seconds_per_step_plain"]
    print(
        f"this tree's --precision=auto / {against}: {wall:.2f}x the steps per wall minute, "
        f"{cpu:.2f}x the steps per CPU second between validations"
    )
    policy = "mixed_bfloat16" if "bfloat16" in ours["dtype_policy"] else "float32"
    bare, bare_cpu = report["bare_step"][policy], report["bare_step"][f"{policy}_cpu"]
    print(
        f"this tree's campaign step against the bare step ({bare:.3f} s, {bare_cpu:.3f} CPU s): "
        f"{60 / ours['steps_per_wall_minute'] / bare:.2f}x the wall time, "
        f"{ours['cpu_seconds_per_step_plain'] / bare_cpu:.2f}x the CPU time between validations"
    )


if __name__ == "__main__":
    main()
