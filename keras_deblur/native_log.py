"""Drops two known-harmless ERROR lines that TensorFlow's C++ code writes to stderr.

An `E` line in the log of a healthy run reads as a failure. TensorFlow's C++
logging cannot be filtered per message from Python, and
`TF_CPP_MIN_LOG_LEVEL=3` would hide real errors too, so the command-line
tools pass file descriptor 2 through a small child process that drops
exactly these lines and forwards everything else unchanged:

1. `meta_optimizer.cc:...] remapper failed: INVALID_ARGUMENT: Mutation::Apply
   error: fanout '.../LeakyReluGrad' exist for missing node '.../BiasAdd'`
   (`LeakyReluGrad_1` for the gradient penalty's second backward pass).
   With oneDNN on (the default on CPUs with AVX512-VNNI or AMX, or
   `TF_ENABLE_ONEDNN_OPTS=1`), grappler's remapper fuses Conv2D + BiasAdd
   into `_FusedConv2D`, then on its second pass fuses that with the
   LeakyRelu after it, without checking that in a training graph the
   LeakyReluGrad still reads the BiasAdd output. The graph mutation is
   rejected, grappler keeps the graph from before that pass, and the step
   computes the same values, only without that one fusion (a small Keras
   model trains to bit-identical weights with the remapper off). Any Keras
   Conv2D -> LeakyReLU trained with oneDNN prints it (in DeblurGAN: the
   critic's first layer, the only convolution not followed by a norm).
2. `cuda_platform.cc:...] failed call to cuInit: ... (303)`: the CUDA build
   of TensorFlow on a machine without the NVIDIA driver, after TensorFlow
   has already said "Could not find cuda drivers on your machine, GPU will
   not be used".

A child process rather than a thread: it keeps forwarding after this
process dies, so the last lines of a crash (a C++ check failure, then
abort) still reach the terminal.
"""

import os
import re
import signal
import subprocess
import sys

HARMLESS = (
    rb"E\d{4} [^\]]*\bmeta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: "
    rb"Mutation::Apply error: fanout '[^']*/LeakyReluGrad(_\d+)?' exist for missing node "
    rb"'[^']*/BiasAdd'\.\s*$",
    rb"E\d{4} [^\]]*\bcuda_platform\.cc:\d+\] failed call to cuInit: .*\(303\)\s*$",
)


def filter_harmless_native_errors():
    """Routes this process's stderr through a child process that drops `HARMLESS` lines.

    For command-line entry points only: it rewires file descriptor 2 for the
    whole process. Does nothing where that is not possible (not POSIX, or no
    stderr).

    Returns:
        The filter's `subprocess.Popen`, or None when not installed.
    """
    if os.name != "posix":
        return None
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)], stdin=read_end, stdout=2
        )
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    return child


def _forward_all_but_harmless():
    # Ctrl-C is meant for the training process, whose last words still come through here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    patterns = [re.compile(pattern) for pattern in HARMLESS]
    output = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not any(pattern.match(line) for pattern in patterns):
            output.write(line)
            output.flush()


if __name__ == "__main__":
    _forward_all_but_harmless()
