"""What every bench compares against, measured in the same run.

- `matmul_peak_gflops()`: the best fp32 matmul rate this machine reaches now
  (tf.linalg.matmul and numpy, 4096x4096).
- `cpu_isa()` (from `keras_deblur.cpu`): the vector extensions of this CPU that
  decide int8, bf16 and XLA speed, printed beside every bench's ratios.
- `torch_reference()`: the reference PyTorch DeblurGAN timed by
  ../shared/bench/torch_reference.py, or None where torch or the script is
  missing. These machines are shared and noisy, so only ratios taken in one
  run mean anything.
"""

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from keras_deblur.cpu import cpu_isa  # noqa: E402, F401 - re-exported for the benches

TORCH_REFERENCE = os.path.join(REPO, "..", "shared", "bench", "torch_reference.py")


def mean_seconds(fn, repeats):
    """Mean of `repeats` timed calls after one untimed warm-up call, as the
    PyTorch yardstick times its own runs."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def matmul_peak_gflops(n=4096, repeats=3):
    """Returns {"tf_matmul_gflops": ..., "numpy_matmul_gflops": ..., "best": ...}."""
    import numpy as np
    import tensorflow as tf

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    ta, tb = tf.constant(a), tf.constant(b)
    matmul = tf.function(lambda: tf.linalg.matmul(ta, tb))
    flops = 2 * n**3
    rates = {
        "tf_matmul_gflops": flops / mean_seconds(lambda: matmul().numpy(), repeats) / 1e9,
        "numpy_matmul_gflops": flops / mean_seconds(lambda: a @ b, repeats) / 1e9,
    }
    rates["best"] = max(rates.values())
    return rates


def torch_reference():
    """Runs the PyTorch yardstick; returns its JSON dict, or None with the reason printed."""
    if not os.path.exists(TORCH_REFERENCE):
        print(f"PyTorch reference skipped: {TORCH_REFERENCE} not found")
        return None
    run = subprocess.run(
        [sys.executable, TORCH_REFERENCE, "--json"], capture_output=True, text=True
    )
    if run.returncode != 0:
        lines = run.stderr.strip().splitlines()
        print(f"PyTorch reference skipped: {lines[-1] if lines else 'exit ' + str(run.returncode)}")
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])
