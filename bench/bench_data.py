"""Data-pipeline speed: kernels/s, OpenCV vs FFT blurring, on-the-fly training samples/s.

    python bench/bench_data.py [--kernels 300] [--samples 200] [--json] [--only_procedural]

Measures, in one run on this machine:
- random kernels per second (training mix of exposures and fractions), and
  kernel extents at each exposure setting and fraction against extents
  measured on the reference implementation (`reference_kernel_extents.json`),
  with a two-sample Kolmogorov-Smirnov test;
- blurring a 1280x720 RGB image with a 64x64 kernel: `cv2.filter2D` against
  the reflect-padded real FFT (`scipy.fft`) that `motion_blur.blur_image`
  uses for large kernels, wall and CPU time (interleaved, best of N), and the
  largest difference between their results; also a 256x256 training crop with
  its margin;
- time per step of one on-the-fly sample (decode, kernel, blur of the crop);
- `synthetic_dataset` training samples per second at 256x256 (batch 1,
  prefetch) from 1280x720 PNGs, against the issue's target of 20 samples/s,
  and `paired_dataset` from 1280x720 pairs;
- procedural data: one `dead_leaves_image` (single-threaded OpenCV) at
  384x384 and at a 128-pixel training crop's canvas, and `procedural_dataset`
  against the embedded photos' stream (plain, and with augmentation, noise
  and JPEG) at 128x128, the mobile preset's crops.
"""

import argparse
import functools
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_deblur.data import datasets, dead_leaves, motion_blur  # noqa: E402
from keras_deblur.data.embedded import embedded_photo_paths  # noqa: E402
from keras_deblur.data.images import read_image, write_image  # noqa: E402
from keras_deblur.data.motion_blur import TRAINING_EXPOSURES  # noqa: E402

TARGET_SAMPLES_PER_SECOND = 20.0
REFERENCE_EXTENTS_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "reference_kernel_extents.json"
)


def _best_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_kernels(count):
    """Kernels per second, and extents against the reference implementation's.

    Our extents come from `count` trajectories per setting, each splatted at
    the four exposure fractions; a two-sample Kolmogorov-Smirnov test compares
    them with the reference's (`reference_kernel_extents.json`).
    """
    with open(REFERENCE_EXTENTS_FILE) as file:
        reference = json.load(file)["extents"]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(count):
        motion_blur.random_psf(rng)
    results = {"training_mix_kernels_per_s": count / (time.perf_counter() - start)}
    for name, exposure in (("default", None), ("0.005", 0.005), ("mix", TRAINING_EXPOSURES)):
        extents = {fraction: [] for fraction in reference[name]}
        for _ in range(count):
            level = exposure
            if isinstance(exposure, tuple):
                level = exposure[rng.integers(len(exposure))]
            trajectory = motion_blur.random_trajectory(rng, exposure=level)
            for fraction, values in extents.items():
                kernel = motion_blur.trajectory_to_psf(trajectory, float(fraction))
                values.append(motion_blur.kernel_extent(kernel))
        for fraction, ours in extents.items():
            theirs = reference[name][fraction]
            results[f"{name}/{fraction}"] = {
                "ours_median_p5_p95": _summary(ours),
                "reference_median_p5_p95": _summary(theirs),
                "ks_statistic": float(scipy.stats.ks_2samp(ours, theirs).statistic),
                "ks_pvalue": float(scipy.stats.ks_2samp(ours, theirs).pvalue),
            }
    return results


def _summary(values):
    return [float(np.percentile(values, q)) for q in (50, 5, 95)]


def blur_opencv(image, kernel):
    """The alternative `motion_blur.blur_image` does not use for large kernels:
    `cv2.filter2D` (its DFT path), same convolution and border convention."""
    kernel_h, kernel_w = kernel.shape
    anchor = (kernel_w - 1 - kernel_w // 2, kernel_h - 1 - kernel_h // 2)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    return cv2.filter2D(
        image, cv2.CV_32F, flipped, anchor=anchor, borderType=cv2.BORDER_REFLECT_101
    )


def _compare_blurs(image, kernel, repeats):
    methods = {
        "opencv_filter2d": lambda: blur_opencv(image, kernel),
        "blur_image_scipy_fft": lambda: motion_blur.blur_image(image, kernel),
    }
    # Interleaved rounds and the best of each, so a busy spell on a shared
    # machine does not favour whichever method ran during a quiet one.
    wall = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for _ in range(repeats + 1):
        for name, method in methods.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            method()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    results = {}
    for name in methods:
        results[f"{name}_ms"] = 1e3 * min(wall[name][1:])
        results[f"{name}_cpu_ms"] = 1e3 * min(cpu[name][1:])
    difference = np.abs(blur_opencv(image, kernel) - motion_blur.blur_image(image, kernel)).max()
    results["max_abs_difference"] = float(difference)
    return results


def measure_blur(repeats):
    """A 64x64 kernel on a 1280x720 frame, and a 31x31 kernel on a training crop + margin."""
    rng = np.random.default_rng(0)
    frame = cv2.resize(read_image(embedded_photo_paths("train")[0]), (1280, 720))
    frame = frame.astype(np.float32) / 255
    psf = motion_blur.random_psf(rng, exposure=0.005, fraction=1.0, kernel_size=121)
    kernel = psf[28:92, 28:92] / psf[28:92, 28:92].sum()  # 64x64 around the centre
    crop_kernel = psf[45:76, 45:76] / psf[45:76, 45:76].sum()
    crop = np.ascontiguousarray(frame[:286, :286])
    small = motion_blur.random_psf(rng, exposure=0.01, fraction=0.1)  # a typical 7x7
    return {
        "1280x720_64x64": _compare_blurs(frame, kernel, repeats),
        "286x286_31x31": _compare_blurs(crop, crop_kernel, repeats),
        f"1280x720_{small.shape[0]}x{small.shape[0]}_ms": 1e3
        * _best_seconds(lambda: motion_blur.blur_image(frame, small), repeats),
    }


def _make_frames(folder, count):
    """1280x720 PNGs (GoPro frame size) from the embedded photos."""
    paths = []
    for index, source in enumerate(embedded_photo_paths("all")[:count]):
        frame = cv2.resize(read_image(source)[:, :, :3], (1280, 720), interpolation=cv2.INTER_CUBIC)
        path = os.path.join(folder, "sharp", f"{index:03d}.png")
        write_image(path, frame)
        blurred, _ = motion_blur.synthesize_blur(frame, np.random.default_rng(index))
        write_image(os.path.join(folder, "blur", f"{index:03d}.png"), blurred)
        paths.append(path)
    return paths


def measure_steps(frame_path, repeats):
    rng = np.random.default_rng(0)
    frame = read_image(frame_path)
    kernels = [motion_blur.random_psf(rng) for _ in range(20)]
    margin = max(k.shape[0] for k in kernels) // 2
    region = frame[: 256 + 2 * margin, : 256 + 2 * margin]
    return {
        "decode_1280x720_png_s": _best_seconds(lambda: read_image(frame_path), repeats),
        "kernel_s": _best_seconds(lambda: motion_blur.random_psf(rng), repeats),
        "blur_crop_with_margin_s": _best_seconds(
            lambda: motion_blur.synthesize_blur(region, rng, kernel=kernels[0]), repeats
        ),
    }


def measure_dataset(dataset, samples):
    """Samples per wall-clock second, and CPU milliseconds (all threads) per sample.

    On a shared machine the wall-clock rate understates what idle cores give;
    `cpu_count / cpu time per sample` bounds it from above.
    """
    stream = iter(dataset.repeat().batch(1).prefetch(4))
    for _ in range(10):  # warm-up: tracing, thread pools
        next(stream)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(samples):
        next(stream)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"samples_per_s": samples / wall, "cpu_ms_per_sample": 1e3 * cpu / samples}


def measure_procedural(samples, repeats):
    """Milliseconds per dead-leaves image, and procedural against photo training streams."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one tf.data worker's share
    rng = np.random.default_rng(0)
    results = {}
    for size, supersample in ((384, 2), (384, 1), (190, 2)):
        draw = functools.partial(
            dead_leaves.dead_leaves_image, rng, (size, size), supersample=supersample
        )
        seconds = _best_seconds(draw, repeats)
        results[f"dead_leaves_{size}x{size}_supersample{supersample}_ms"] = 1e3 * seconds
    cv2.setNumThreads(threads)
    photos = embedded_photo_paths("train")
    degraded = {"augment": True, "noise_ratio": 0.5, "jpeg_ratio": 0.5}
    streams = {
        "procedural_128": datasets.procedural_dataset(128, seed=0),
        "photos_128": datasets.synthetic_dataset(photos, crop_size=128, seed=0),
        "photos_128_augmented_noise_jpeg": datasets.synthetic_dataset(
            photos, crop_size=128, seed=0, **degraded
        ),
    }
    for name, stream in streams.items():
        results[name] = measure_dataset(stream, samples)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=300)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument(
        "--only_procedural", action="store_true", help="Measure the procedural data only."
    )
    args = parser.parse_args()

    report = {"cpu_count": os.cpu_count(), "opencv_threads": cv2.getNumThreads()}
    report["procedural"] = measure_procedural(args.samples, args.repeats)
    if args.only_procedural:
        _print_procedural(report, args.json)
        return
    report["kernels"] = measure_kernels(args.kernels)
    report["blur"] = measure_blur(args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        paths = _make_frames(folder, 6)
        report["sample_steps"] = measure_steps(paths[0], args.repeats)
        synthetic = datasets.synthetic_dataset(paths, crop_size=256, seed=0)
        paired = datasets.paired_dataset(folder, crop_size=256, seed=0)
        report["synthetic_samples_per_s"] = measure_dataset(synthetic, args.samples)
        report["paired_samples_per_s"] = measure_dataset(paired, args.samples)
        report["mixed_samples_per_s"] = measure_dataset(
            datasets.mix_datasets(synthetic, paired, seed=0), args.samples
        )
    report["embedded_samples_per_s"] = measure_dataset(
        datasets.embedded_dataset(crop_size=256, seed=0), args.samples
    )
    report["synthetic_vs_target"] = (
        report["synthetic_samples_per_s"]["samples_per_s"] / TARGET_SAMPLES_PER_SECOND
    )

    if args.json:
        print(json.dumps(report, indent=2))
        return
    kernels = report["kernels"]
    print(f"kernels/s (training mix): {kernels['training_mix_kernels_per_s']:.0f}")
    for name, stats in kernels.items():
        if isinstance(stats, dict):
            ours, theirs = stats["ours_median_p5_p95"], stats["reference_median_p5_p95"]
            print(
                f"extent [{name}]: ours {ours[0]:.0f} px (5-95%: {ours[1]:.0f}-{ours[2]:.0f}), "
                f"reference {theirs[0]:.0f} px ({theirs[1]:.0f}-{theirs[2]:.0f}), "
                f"KS D={stats['ks_statistic']:.3f} p={stats['ks_pvalue']:.2f}"
            )
    for name, value in report["blur"].items():
        if isinstance(value, dict):
            print(
                f"blur {name} (RGB float32): " + ", ".join(f"{k} {v:.3g}" for k, v in value.items())
            )
        else:
            print(f"blur {name}: {value:.2f}")
    for key, value in report["sample_steps"].items():
        print(f"one sample: {key} = {value * 1e3:.1f} ms")
    for key in ("synthetic", "paired", "mixed", "embedded"):
        rate = report[key + "_samples_per_s"]
        print(
            f"{key} training samples/s at 256x256: {rate['samples_per_s']:.1f} "
            f"({rate['cpu_ms_per_sample']:.0f} CPU ms/sample, at most "
            f"{1e3 * report['cpu_count'] / rate['cpu_ms_per_sample']:.0f}/s on "
            f"{report['cpu_count']} idle CPUs)"
        )
    print(
        f"synthetic / target ({TARGET_SAMPLES_PER_SECOND:.0f} samples/s): "
        f"{report['synthetic_vs_target']:.2f}x on {report['cpu_count']} CPUs"
    )
    _print_procedural(report, json_output=False)


def _print_procedural(report, json_output):
    if json_output:
        print(json.dumps(report, indent=2))
        return
    for name, value in report["procedural"].items():
        if isinstance(value, dict):
            print(
                f"{name}: {value['samples_per_s']:.1f} samples/s, "
                f"{value['cpu_ms_per_sample']:.0f} CPU ms/sample"
            )
        else:
            print(f"{name}: {value:.1f} ms (one core)")


if __name__ == "__main__":
    main()
