"""Seconds per DeblurGAN training iteration, with and without XLA, against this machine's peak.

    python bench/bench_train.py [--size 256] [--iterations 3] [--no_jit] [--json]
    python bench/bench_train.py --profile paper [--profile mobile] [--repeats 5] [--no_jit]

One iteration = one `DeblurGAN.train_step`: 5 critic updates with gradient
penalty, then one generator update with the VGG19 conv3_3 perceptual loss;
the full model (9 residual blocks, 64 filters), batch 1, `size`x`size`. The
step's floating-point operations are counted on its graph by the TensorFlow
profiler, and divided by the fp32 matmul rate measured in the same run
(tf.linalg.matmul, 4096x4096) to give the time the step would take at matmul
peak; `fraction_of_peak` = that time / measured time. Yardstick: the
reference PyTorch iteration (../shared/bench/torch_reference.py), timed in the
same run when torch is installed (3.9-4.0 s on a quiet 2-core CI machine).
VGG weights are random (no download needed): the cost is the same. The CPU's
vector ISA (yardstick.cpu_isa) is printed beside the ratios.

--profile splits one step of a preset (paper: the DeblurGAN step above;
mobile: --preset=mobile's warm-up step, generator only with pixel MSE, batch 8
of 128x128) into critic forward/backward, gradient penalty (its forward and
double backward), VGG features, generator forward/backward, optimizer
updates and data, each timed as its own tf.function (see `profile_step`),
with and without XLA.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402
from yardstick import cpu_isa, matmul_peak_gflops, torch_reference  # noqa: E402

from keras_deblur import losses  # noqa: E402
from keras_deblur.gan import DeblurGAN  # noqa: E402
from keras_deblur.losses import build_perceptual_loss  # noqa: E402
from keras_deblur.models import build_critic, build_generator, build_mobile_generator  # noqa: E402

# The two configurations `keras_deblur/train.py` trains with: --preset=paper's
# DeblurGAN step, and --preset=mobile's content-only step (generator only, log-MSE).
PRESETS = {
    "paper": dict(size=256, batch=1, mobile=False, critic_steps=5, content=100.0, pixel=0.0),
    "mobile": dict(size=128, batch=8, mobile=True, critic_steps=0, content=0.0, pixel=1.0),
}


def _make_gan(jit_compile, preset="paper"):
    import logging

    logging.getLogger("keras_deblur.losses").setLevel(logging.ERROR)
    config = PRESETS[preset]
    generator = build_mobile_generator() if config["mobile"] else build_generator()
    perceptual = build_perceptual_loss(None) if config["content"] > 0 else None
    gan = DeblurGAN(generator, build_critic(), perceptual)
    gan.compile(
        g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
        d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
        critic_steps=max(config["critic_steps"], 1),
        adversarial_weight=1.0 if config["critic_steps"] else 0.0,
        content_weight=config["content"],
        pixel_weight=config["pixel"],
        pixel_loss="log_mse" if config["mobile"] else "mse",
        jit_compile=jit_compile,
    )
    return gan


def _batch(size, batch=1):
    rng = np.random.default_rng(0)
    return tuple(rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32") for _ in range(2))


PROFILE_PARTS = (
    "critic fwd/bwd",
    "gradient penalty",
    "VGG features",
    "generator fwd/bwd",
    "optimizer updates",
    "data",
)


def _part_functions(gan, blurred, sharp, jit_compile):
    """One tf.function per part of `train_step`, with how many times the step runs it.

    Each part is the same computation the step does (same layers, same loss
    functions), cut at the tensor where the next part starts: the critic
    parts see a fixed fake batch, the VGG and adversarial parts stop at the
    gradient with respect to the fake image, the generator part starts from
    a gradient of the same shape.
    """
    generator, critic = gan.generator, gan.critic
    fake = tf.constant(generator(blurred, training=False))
    upstream = tf.ones_like(fake) / float(np.prod(fake.shape))
    g_variables, d_variables = generator.trainable_variables, critic.trainable_variables

    def function(fn):
        return tf.function(fn, jit_compile=jit_compile)

    @function
    def generator_part():
        with tf.GradientTape() as tape:
            output = generator(blurred, training=True)
            loss = ops.sum(output * upstream)
            if gan.pixel_weight > 0:
                loss += ops.mean(losses.pixel_mse_loss(sharp, output))
        return tape.gradient(loss, g_variables)

    @function
    def critic_part():
        with tf.GradientTape() as tape:
            real_scores = critic(sharp, training=True)
            fake_scores = critic(fake, training=True)
            loss = ops.mean(losses.critic_wasserstein_loss(real_scores, fake_scores))
        return tape.gradient(loss, d_variables)

    def gradient_at_fake(loss_of_fake):
        """A part that backpropagates `loss_of_fake(fake)` to the fake image only."""

        @function
        def part():
            with tf.GradientTape() as tape:
                tape.watch(fake)
                loss = ops.mean(loss_of_fake(fake))
            return tape.gradient(loss, fake)

        return part

    adversarial_part = gradient_at_fake(
        lambda image: losses.generator_adversarial_loss(critic(image, training=True))
    )
    vgg_part = gradient_at_fake(lambda image: gan.perceptual_loss(sharp, image))

    @function
    def penalty_part():
        with tf.GradientTape() as tape:
            loss = ops.mean(gan.gradient_penalty(sharp, fake))
        return tape.gradient(loss, d_variables)

    @function
    def critic_update():
        gan.d_optimizer.apply_gradients([(ops.zeros_like(v), v) for v in d_variables])

    @function
    def generator_update():
        gan.g_optimizer.apply_gradients([(ops.zeros_like(v), v) for v in g_variables])

    steps = gan.critic_steps if gan.adversarial_weight > 0 else 0
    parts = {
        "critic fwd/bwd": [(critic_part, steps), (adversarial_part, 1 if steps else 0)],
        "gradient penalty": [(penalty_part, steps)],
        "VGG features": [(vgg_part, 1 if gan.content_weight > 0 else 0)],
        "generator fwd/bwd": [(generator_part, 1)],
        "optimizer updates": [(critic_update, steps), (generator_update, 1)],
    }
    return {name: [(fn, n) for fn, n in runs if n] for name, runs in parts.items()}


def profile_step(preset, jit_compile, repeats):
    """Median seconds per step spent in each part of `train_step`, and the whole step.

    Method: each part runs as its own tf.function (XLA-compiled or not, as the
    step), is timed `repeats` times in rounds that alternate the parts (so
    that load from other processes spreads over all of them), and its median
    is multiplied by how often one step runs it. "data" is `next()` on the
    bench's in-memory dataset (bench_data.py times the real pipeline); "rest"
    is the whole step minus the parts: metrics, the glue between parts, and
    what XLA gains or loses by fusing across them (negative: it gains).
    """
    config = PRESETS[preset]
    gan = _make_gan(jit_compile, preset)
    blurred, sharp = (tf.constant(x) for x in _batch(config["size"], config["batch"]))
    parts = _part_functions(gan, blurred, sharp, jit_compile)
    iterator = iter(tf.data.Dataset.from_tensors((blurred, sharp)).repeat())
    parts["data"] = [(lambda: next(iterator), 1)]
    step = tf.function(gan.train_step, jit_compile=jit_compile)
    start = time.perf_counter()
    step((blurred, sharp))
    compile_seconds = time.perf_counter() - start
    timed = {"step": [(lambda: step((blurred, sharp)), 1)], **parts}
    samples = {(name, index): [] for name, runs in timed.items() for index in range(len(runs))}
    first_calls = {}
    for name, runs in parts.items():
        start = time.perf_counter()
        for fn, _ in runs:
            fn()  # tracing and compilation
        first_calls[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, runs in timed.items():
            for index, (fn, _) in enumerate(runs):
                start = time.perf_counter()
                fn()
                samples[(name, index)].append(time.perf_counter() - start)
    seconds = {
        name: sum(count * float(np.median(samples[(name, i)])) for i, (_, count) in enumerate(runs))
        for name, runs in timed.items()
    }
    seconds["rest"] = seconds["step"] - sum(seconds[name] for name in PROFILE_PARTS)
    seconds["first_step"] = compile_seconds
    seconds["first_calls"] = first_calls
    return seconds


def format_profile(preset, key, seconds):
    config = PRESETS[preset]
    lines = [
        f"  {preset} step ({key}; batch {config['batch']}, {config['size']}x{config['size']}): "
        f"{seconds['step']:.2f} s (first call {seconds['first_step']:.0f} s)"
    ]
    for name in (*PROFILE_PARTS, "rest"):
        share = 100 * seconds[name] / seconds["step"]
        first = seconds["first_calls"].get(name)
        lines.append(
            f"    {name:18s} {seconds[name]:7.3f} s  {share:5.1f}%"
            + (f"   (first call {first:.1f} s)" if first is not None else "")
        )
    return "\n".join(lines)


def count_step_gflops(size):
    """Floating-point operations of one train_step graph (TF profiler), in GFLOP."""
    gan = _make_gan(False)
    spec = tf.TensorSpec((1, size, size, 3), tf.float32)
    graph = tf.function(gan.train_step).get_concrete_function((spec, spec)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph, options=options)
    return profile.total_float_ops / 1e9


def measure_step_seconds(size, jit_compile, iterations):
    gan = _make_gan(jit_compile)
    dataset = tf.data.Dataset.from_tensors(_batch(size)).repeat()
    start = time.perf_counter()
    gan.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)  # tracing / XLA compilation
    first = time.perf_counter() - start
    start = time.perf_counter()
    gan.fit(dataset, steps_per_epoch=iterations, epochs=1, verbose=0)
    seconds = (time.perf_counter() - start) / iterations
    assert int(gan.d_optimizer.iterations) == 5 * int(gan.g_optimizer.iterations)
    return seconds, first


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--no_jit", action="store_true", help="skip the jit_compile=True run")
    parser.add_argument("--no_torch", action="store_true", help="skip the PyTorch yardstick")
    parser.add_argument(
        "--profile",
        choices=sorted(PRESETS),
        action="append",
        help="time each part of that preset's step instead (repeatable)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="profile rounds per part")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = {"cpu": cpu_isa()}
    if args.profile:
        results.update(run_profiles(args))
    else:
        results.update(run_bench(args))
    if args.json:
        print(json.dumps(results, indent=2))
    elif not args.profile:
        print_bench(results)


def run_profiles(args):
    results = {}
    say = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    say(f"Seconds per training step by part, median of {args.repeats} ({cpu_isa()}):")
    for preset in args.profile:
        for jit in (False,) if args.no_jit else (False, True):
            keras.backend.clear_session()
            key = "xla" if jit else "no_xla"
            seconds = profile_step(preset, jit, args.repeats)
            results[f"{preset}_{key}_profile"] = seconds
            say(format_profile(preset, key, seconds))
    return results


def run_bench(args):
    results = {"size": args.size, "batch": 1, "critic_steps": 5, "iterations": args.iterations}
    results["device"] = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    results["matmul_gflops"] = matmul_peak_gflops()["best"]
    reference = None if args.no_torch else torch_reference()
    results["pytorch_seconds_per_step"] = reference and reference["train_iteration_256_s"]
    results["step_gflop"] = count_step_gflops(args.size)
    ideal = results["step_gflop"] / results["matmul_gflops"]
    results["seconds_at_matmul_peak"] = ideal
    for jit in (False,) if args.no_jit else (False, True):
        keras.backend.clear_session()
        seconds, first = measure_step_seconds(args.size, jit, args.iterations)
        key = "xla" if jit else "no_xla"
        results[f"{key}_seconds_per_step"] = seconds
        results[f"{key}_first_step_seconds"] = first
        results[f"{key}_fraction_of_peak"] = ideal / seconds
        if results["pytorch_seconds_per_step"] and args.size == 256:
            results[f"{key}_vs_pytorch"] = seconds / results["pytorch_seconds_per_step"]
    return results


def print_bench(results):
    ideal = results["seconds_at_matmul_peak"]
    print(
        f"DeblurGAN train step, {results['size']}x{results['size']}, batch 1, 5 critic steps "
        f"({results['device']}, {results['cpu']}): {results['step_gflop']:.1f} GFLOP per step; "
        f"matmul peak {results['matmul_gflops']:.1f} GFLOP/s -> {ideal:.2f} s at peak"
    )
    if results["pytorch_seconds_per_step"]:
        print(f"  PyTorch reference (same run): {results['pytorch_seconds_per_step']:.2f} s/step")
    for key in ("no_xla", "xla"):
        if f"{key}_seconds_per_step" in results:
            ratio = results.get(f"{key}_vs_pytorch")
            print(
                f"  {key:7s} {results[f'{key}_seconds_per_step']:.2f} s/step "
                f"(first step incl. compile {results[f'{key}_first_step_seconds']:.0f} s), "
                f"{100 * results[f'{key}_fraction_of_peak']:.0f}% of matmul peak"
                + (f", {ratio:.2f}x the PyTorch reference on {results['cpu']}" if ratio else "")
            )


if __name__ == "__main__":
    main()
