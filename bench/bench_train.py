"""Seconds per DeblurGAN training iteration, with and without XLA, against this machine's peak.

    python bench/bench_train.py [--size 256] [--iterations 3] [--no_jit] [--json]

One iteration = one `DeblurGAN.train_step`: 5 critic updates with gradient
penalty, then one generator update with the VGG19 conv3_3 perceptual loss;
the full model (9 residual blocks, 64 filters), batch 1, `size`x`size`. The
step's floating-point operations are counted on its graph by the TensorFlow
profiler, and divided by the fp32 matmul rate measured in the same run
(tf.linalg.matmul, 4096x4096) to give the time the step would take at matmul
peak; `fraction_of_peak` = that time / measured time. Yardstick: the
reference PyTorch iteration (../shared/bench/torch_reference.py), timed in the
same run when torch is installed (3.9-4.0 s on a quiet 2-core CI machine).
VGG weights are random (no download needed): the cost is the same.
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
from yardstick import matmul_peak_gflops, torch_reference  # noqa: E402

from keras_deblur.gan import DeblurGAN  # noqa: E402
from keras_deblur.losses import build_perceptual_loss  # noqa: E402
from keras_deblur.models import build_critic, build_generator  # noqa: E402


def _make_gan(jit_compile):
    import logging

    logging.getLogger("keras_deblur.losses").setLevel(logging.ERROR)
    gan = DeblurGAN(build_generator(), build_critic(), build_perceptual_loss(None))
    gan.compile(
        g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
        d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
        critic_steps=5,
        jit_compile=jit_compile,
    )
    gan.build_optimizers()
    return gan


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
    rng = np.random.default_rng(0)
    batch = tuple(rng.uniform(-1, 1, (1, size, size, 3)).astype("float32") for _ in range(2))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

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
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"DeblurGAN train step, {args.size}x{args.size}, batch 1, 5 critic steps "
        f"({results['device']}): {results['step_gflop']:.1f} GFLOP per step; "
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
                + (f", {ratio:.2f}x the PyTorch reference" if ratio else "")
            )


if __name__ == "__main__":
    main()
