"""One 12-megapixel photo end to end (read, tile, model, write) through every inference path.

    python bench/bench_12mp.py [--tflite_dir out] [--sizes 256x256,dynamic] [--threads 1,2]
                               [--photo photo.jpg] [--work_dir /tmp/bench_12mp]

Times `keras_deblur.data.images.read_image_and_header`, `keras_deblur.inference.deblur`
and `write_image` (JPEG, as the deblur CLI does) on a 4000x3000 JPEG (`--photo` cropped to
4:3 and resized; default: a held-out photo shipped with scikit-image) for the shipped
`mobile` generator as Keras float32, as Keras mixed_bfloat16 where the CPU has AVX512-BF16
or AMX, and as each TFLite variant (fp32, fp16, dynamic-range, int8) of each `--sizes` on
each `--threads`. The `.tflite` files come from `--tflite_dir` (`python -m export.tflite
--quantization all --input_size 256x256,dynamic --output_dir DIR`) or are exported first
into `--work_dir`.

Each configuration runs in its own subprocess, so its peak RSS (`ru_maxrss`) is its own and
includes the process's start (TensorFlow is imported by the package either way). Printed: the
CPU ISA, seconds to load the model and per stage, peak RSS, the deblur time as a ratio of
Keras float32's in the same run, the CPU seconds of the deblur (user + system, all
threads: less skewed than wall time on a shared machine), and the output against Keras
float32's: PSNR, the largest difference in levels away from tile seams and at them
(within the overlap of a tile edge of either path). The issue's goals: int8 .tflite under
5 s (stretch 2 s) and 1.5 GB; fp32 .tflite within 1 level of Keras away from seams, 2 at
them.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from keras_deblur.cpu import cpu_flags, cpu_isa  # noqa: E402

PHOTO_SIZE = (3000, 4000)
VARIANTS = ("fp32", "fp16", "dynamic", "int8")
GOAL_INT8_SECONDS, STRETCH_INT8_SECONDS, GOAL_RSS_MB = 5.0, 2.0, 1500


def make_photo(path, source=None):
    """Writes a 4000x3000 JPEG of a real scene: `source` (default: scikit-image's held-out
    cat photo) cropped to 4:3 and resized."""
    import cv2

    from keras_deblur.data.embedded import EMBEDDED, photo_paths
    from keras_deblur.data.images import read_image, write_image

    source = source or photo_paths([EMBEDDED], split="validation")[0]
    image = read_image(source)[..., :3]
    height, width = image.shape[:2]
    crop_h, crop_w = min(height, width * 3 // 4), min(width, height * 4 // 3)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    image = image[top : top + crop_h, left : left + crop_w]
    write_image(path, cv2.resize(image, PHOTO_SIZE[::-1], interpolation=cv2.INTER_CUBIC))


def _bf16_clone(model):
    """The float32 generator rebuilt with mixed_bfloat16 layers (the float32 tail kept)."""
    import keras

    def clone(layer):
        config = layer.get_config()
        if config.get("dtype", {}).get("config", {}).get("name") == "float32" and not (
            layer.name.startswith(("tail_tanh", "global_skip"))
        ):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    clone_model = keras.models.clone_model(model, clone_function=clone)
    clone_model.set_weights(model.get_weights())
    return clone_model


def _cpu_seconds():
    """User + system CPU time of this process: on a shared machine, less skewed by other
    processes than wall time (it still pays for contended caches)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_config(name, model_path, threads, photo, output_dir):
    """Runs in the child: load, read, deblur, write; returns timings and peak RSS."""
    from keras_deblur.data.images import read_image_and_header, write_image
    from keras_deblur.inference import deblur
    from keras_deblur.models import load_generator

    start = time.perf_counter()
    model = load_generator(model_path, num_threads=threads)
    if name == "keras_bf16":
        model = _bf16_clone(model)
    times = {"load_s": time.perf_counter() - start}
    start = time.perf_counter()
    image, header = read_image_and_header(photo)
    times["read_s"] = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    result = deblur(model, image)
    times["deblur_s"] = time.perf_counter() - start
    times["deblur_cpu_s"] = _cpu_seconds() - cpu_start
    start = time.perf_counter()
    write_image(os.path.join(output_dir, f"{name}.jpg"), result, header=header)
    times["write_s"] = time.perf_counter() - start
    times["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(os.path.join(output_dir, f"{name}.npy"), result)  # for the comparison, untimed
    return times


def _run_child(name, model_path, threads, photo, output_dir):
    command = [sys.executable, os.path.abspath(__file__), "--child", name, model_path]
    command += [str(threads), photo, output_dir]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"{name}: {done.stderr.strip().splitlines()[-1]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def seam_mask(shape, tilings, overlap=64):
    """True within `overlap` pixels of an inner tile edge of any of `tilings`.

    Args:
        shape: `(height, width)`.
        tilings: list of `(tile_h, tile_w, overlap)` as `deblur` ran them.
    """
    from keras_deblur.inference import SIZE_MULTIPLE, tile_starts

    mask = np.zeros(shape, bool)
    for tile_h, tile_w, tile_overlap in tilings:
        for axis, (size, tile) in enumerate(zip(shape, (tile_h, tile_w), strict=True)):
            starts = tile_starts(size, tile, tile_overlap, SIZE_MULTIPLE)
            edges = np.array(starts[1:] + [s + tile for s in starts[:-1]] or [-(10**9)])
            near = np.abs(np.arange(size)[:, None] - edges[None]).min(axis=1) < overlap
            mask |= near[:, None] if axis == 0 else near[None, :]
    return mask


def tiling(model_input_size, shape):
    """The tiles `deblur` uses on a photo of `shape` for a model of this input size."""
    from keras_deblur.inference import (
        AUTO_TILE_MAX_PIXELS,
        DEFAULT_TILE_OVERLAP,
        DEFAULT_TILE_SIZE,
        even_tile_side,
    )

    if model_input_size is not None:
        side = min(model_input_size)
        return (*model_input_size, min(DEFAULT_TILE_OVERLAP, side // 4))
    if shape[0] * shape[1] <= AUTO_TILE_MAX_PIXELS:
        return (*shape, 0)
    sides = [even_tile_side(s, DEFAULT_TILE_SIZE, DEFAULT_TILE_OVERLAP) for s in shape]
    return (*sides, DEFAULT_TILE_OVERLAP)


def compare(result, reference, mask):
    from keras_deblur.metrics import psnr

    difference = np.abs(result.astype(np.int16) - reference).max(axis=2)
    return {
        "psnr_vs_keras_db": psnr(result, reference),
        "max_diff_away": int(difference[~mask].max()),
        "max_diff_seams": int(difference[mask].max()) if mask.any() else 0,
    }


def export_models(work_dir, sizes):
    from export.convert import parse_input_size
    from export.tflite import export_generator

    export_generator(
        "mobile",
        work_dir,
        quantizations=VARIANTS,
        input_sizes=[parse_input_size(s) for s in sizes],
        latency_repeats=1,
    )


def _configs(args):
    from keras_deblur.pretrained import preset_path

    configs = [("keras_fp32", preset_path("mobile"), None)]
    if {"avx512_bf16", "amx_bf16"} & cpu_flags():
        configs.append(("keras_bf16", preset_path("mobile"), None))
    for size in args.sizes.split(","):
        for variant in VARIANTS:
            path = os.path.join(args.tflite_dir, f"generator_{variant}_{size}.tflite")
            for threads in (int(t) for t in args.threads.split(",")):
                configs.append((f"tflite_{variant}_{size}_{threads}t", path, threads))
    return configs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflite_dir", help="exported .tflite files (default: export them)")
    parser.add_argument("--sizes", default="256x256,dynamic", help="exported input sizes")
    parser.add_argument("--threads", default="1,2", help="XNNPACK thread counts")
    parser.add_argument("--photo", help="photo to crop to 4:3 and resize (default: embedded)")
    parser.add_argument("--work_dir", default="/tmp/bench_12mp")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, path, threads, photo, output_dir = args.child
        threads = None if threads == "None" else int(threads)
        print(json.dumps(run_config(name, path, threads, photo, output_dir)))
        return

    os.makedirs(args.work_dir, exist_ok=True)
    photo = os.path.join(args.work_dir, "photo_4000x3000.jpg")
    make_photo(photo, args.photo)
    if not args.tflite_dir:
        args.tflite_dir = os.path.join(args.work_dir, "tflite")
        export_models(args.tflite_dir, args.sizes.split(","))
    print(f"CPU: {cpu_isa()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    from keras_deblur.data.images import read_image
    from keras_deblur.models.tflite_generator import TFLiteGenerator

    shape = read_image(photo).shape[:2]
    print(f"photo: {photo} ({shape[1]}x{shape[0]})")
    header = (
        f"{'configuration':<30} {'load s':>6} {'read s':>6} {'deblur s':>8} {'CPU s':>6} "
        f"{'write s':>7} {'process s':>9} {'RSS MB':>7} {'/ Keras':>7} {'PSNR vs Keras':>13} "
        f"{'max diff away/seams':>19}"
    )
    print(header)
    keras_tiling = tiling(None, shape)
    reference = baseline = None
    for name, path, threads in _configs(args):
        r = _run_child(name, path, threads, photo, args.work_dir)
        result = np.load(os.path.join(args.work_dir, f"{name}.npy"))
        if reference is None:
            reference, baseline = result, r["deblur_s"]
        size = TFLiteGenerator(path).input_size if path.endswith(".tflite") else None
        mask = seam_mask(shape, [keras_tiling, tiling(size, shape)])
        c = compare(result, reference, mask)
        psnr_text = (
            "identical" if np.isinf(c["psnr_vs_keras_db"]) else f"{c['psnr_vs_keras_db']:.2f} dB"
        )
        print(
            f"{name:<30} {r['load_s']:6.2f} {r['read_s']:6.2f} {r['deblur_s']:8.2f} "
            f"{r['deblur_cpu_s']:6.1f} "
            f"{r['write_s']:7.2f} {r['process_s']:9.1f} {r['peak_rss_mb']:7.0f} "
            f"{r['deblur_s'] / baseline:7.2f} {psnr_text:>13} "
            f"{c['max_diff_away']:>11}/{c['max_diff_seams']}"
        )
    print(
        f"goals: int8 .tflite deblur+read+write < {GOAL_INT8_SECONDS} s (stretch "
        f"{STRETCH_INT8_SECONDS} s), peak RSS < {GOAL_RSS_MB} MB; fp32 .tflite <= 1 level "
        "from Keras away from seams, <= 2 at them"
    )


if __name__ == "__main__":
    main()
