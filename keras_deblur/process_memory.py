"""Keeping a long run's resident memory flat when photos of many sizes go through one process.

The first photo of 1,000-1,600 pixels in a folder of small ones raised the
deblur CLI's resident memory by about 80 MB for the rest of the run (the
mobile generator, oneDNN on; bench/bench_soak.py's photos in one process).
Two pools keep what such a photo's activations needed:

- TensorFlow's oneDNN CPU allocator serves allocations of 256 kB and more from
  its own best-fit pool, which grows to the largest photo and never shrinks;
  `TF_ONEDNN_USE_SYSTEM_ALLOCATOR` sends them to malloc instead;
- glibc's malloc keeps freed memory in its heaps; `malloc_trim(0)` returns it.

Over the 20 photos after the large one: +11% with the trim alone, +6% with
malloc alone, +0.8% with both (and 100 MB less overall); 70 photos took
19.7 and 29.1 s with both against 17.7 and 25.4 s without, on 2 cores at load
11 (noise of that size, or up to 1.1x slower).
`MALLOC_ARENA_MAX`, `M_MMAP_THRESHOLD` and oneDNN's primitive cache capacity
changed nothing.
"""

import ctypes
import os

SYSTEM_ALLOCATOR_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"


def use_system_allocator():
    """Makes TensorFlow allocate large CPU tensors with malloc, which can give them back.

    TensorFlow reads the switch once, at its first large allocation, so call
    this before a model is loaded (after importing TensorFlow is fine). A value
    already in the environment is kept.
    """
    os.environ.setdefault(SYSTEM_ALLOCATOR_ENV, "1")


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (macOS, musl, Windows)
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory():
    """Returns the memory malloc holds free to the operating system (glibc only).

    A few milliseconds; call it between photos, not between tiles.

    Returns:
        bool. True where glibc's `malloc_trim` ran, False where there is none.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
