"""Generator inference speed and memory, with this machine's matmul peak as yardstick.

    python bench/bench_inference.py [--sizes 256x256,720x1280] [--repeats 5]
                                     [--no_torch] [--no_12mp]

Each configuration runs in its own subprocess so that its peak RSS is its own.
Prints seconds per image (mean of --repeats), peak RSS, achieved GFLOP/s as a fraction of the best
fp32 matmul rate (tf.linalg.matmul or numpy, 4096x4096) measured in the same
run, and, when torch is installed, the reference PyTorch generator measured in
the same run (../shared/bench/torch_reference.py) as a ratio.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from yardstick import REPO, matmul_peak_gflops, mean_seconds, torch_reference

# Multiply-accumulates of the full generator per pixel: 49.6 GMAC at 256x256.
GMAC_PER_256 = 49.6


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_generator(height, width, jit_compile, repeats):
    import numpy as np
    import tensorflow as tf

    from keras_deblur.models import build_generator

    model = build_generator(image_shape=(height, width, 3))
    x = tf.constant(
        np.random.default_rng(0).uniform(-1, 1, (1, height, width, 3)).astype("float32")
    )
    forward = tf.function(lambda: model(x, training=False), jit_compile=jit_compile)
    seconds = mean_seconds(lambda: forward().numpy(), repeats)
    gflop = 2 * GMAC_PER_256 * (height * width) / (256 * 256)
    return {"seconds": seconds, "gflops": gflop / seconds, "peak_rss_mb": _peak_rss_mb()}


def measure_12mp_tiled():
    import numpy as np

    from keras_deblur.inference import deblur
    from keras_deblur.models import build_generator

    model = build_generator()
    photo = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    start = time.perf_counter()
    out = deblur(model, photo)
    assert out.shape == photo.shape
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}


def _child(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, REPO)
    if args.child == "matmul":
        result = matmul_peak_gflops()
    elif args.child == "12mp":
        result = measure_12mp_tiled()
    else:
        size, jit = args.child.split(":")
        height, width = (int(v) for v in size.split("x"))
        result = measure_generator(height, width, jit == "xla", args.repeats)
    print(json.dumps(result))


def _run_child(name, repeats):
    command = [sys.executable, __file__, f"--child={name}", f"--repeats={repeats}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x256,720x1280", help="HxW list")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no_torch", action="store_true", help="skip the PyTorch yardstick")
    parser.add_argument("--no_12mp", action="store_true", help="skip the tiled 12 MP photo")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    peak = _run_child("matmul", args.repeats)
    best_peak = peak["best"]
    print(
        f"matmul peak: tf {peak['tf_matmul_gflops']:.0f} GFLOP/s, "
        f"numpy {peak['numpy_matmul_gflops']:.0f} GFLOP/s (best {best_peak:.0f})"
    )
    torch_result = None if args.no_torch else torch_reference()
    if torch_result:
        print(
            f"PyTorch reference: 256x256 {torch_result['generator_256_s']:.3f} s, "
            f"720x1280 {torch_result['generator_720p_s']:.2f} s "
            f"(sgemm {torch_result['sgemm_gflops']} GFLOP/s)"
        )
    torch_seconds = {
        "256x256": torch_result and torch_result["generator_256_s"],
        "720x1280": torch_result and torch_result["generator_720p_s"],
    }

    print(
        f"{'size':>9} {'mode':>5} {'s/image':>8} {'GFLOP/s':>8} {'of peak':>7} "
        f"{'RSS MB':>7} {'vs torch':>8}"
    )
    for size in args.sizes.split(","):
        for mode in ("graph", "xla"):
            r = _run_child(f"{size}:{mode}", args.repeats)
            ratio = torch_seconds.get(size)
            ratio_text = f"{r['seconds'] / ratio:.2f}x" if ratio else "-"
            print(
                f"{size:>9} {mode:>5} {r['seconds']:8.3f} {r['gflops']:8.0f} "
                f"{r['gflops'] / best_peak:7.0%} {r['peak_rss_mb']:7.0f} {ratio_text:>8}"
            )
    if not args.no_12mp:
        r = _run_child("12mp", args.repeats)
        print(
            f"12 MP photo (4000x3000, auto tiling): {r['seconds']:.1f} s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (target < 3000 MB)"
        )


if __name__ == "__main__":
    main()
