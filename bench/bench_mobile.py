"""The mobile generator's latency in Keras and in every TFLite variant, beside the full generator.

    python bench/bench_mobile.py [--weights mobile] [--sizes 256x256,720x1280]
                                 [--threads 1,2] [--repeats 5] [--json]

For each size, times in one run: the mobile generator in Keras
(`predict_on_batch`, TensorFlow limited to the largest thread count) and its
fp32, fp16, dynamic-range and int8 TFLite models as `python -m export.tflite`
writes them, and the full 9-block generator's fp32 TFLite model (random weights,
which time the same as trained ones) as the yardstick. Prints the CPU's ISA,
since int8 speed depends on it, and the issue's targets:

- mobile int8 / full-generator fp32 TFLite    target <= 0.25 (AVX2 CPUs)
- mobile int8 at 256x256, 2 threads            target <= 25 ms (AVX-512 VNNI CPUs)
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_tflite import _calibration, _keras_ms, _tflite_ms  # noqa: E402
from yardstick import cpu_isa  # noqa: E402

TARGET_INT8_VS_FULL_FP32 = 0.25
TARGET_INT8_VNNI_MS = 25.0
VARIANTS = ("fp32", "fp16", "dynamic", "int8")


def run(weights, sizes, threads, repeats, calibration_images):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(max(threads))
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from export.calibration import representative_dataset
    from export.convert import convert_generator
    from keras_deblur import build_generator, load_generator
    from keras_deblur.models.complexity import count_macs

    mobile = load_generator(weights)
    full = build_generator(dropout_rate=0.0)
    results = {"model": weights, "cpu": cpu_isa()}
    for size in sizes:
        tag = f"{size[0]}x{size[1]}"
        images = _calibration(size, calibration_images)
        flatbuffers = {
            variant: convert_generator(
                mobile, variant, size, representative_dataset=representative_dataset(images)
            )
            for variant in VARIANTS
        }
        flatbuffers["fp32_dynamic_shape"] = convert_generator(mobile, "fp32", None)
        full_fp32 = convert_generator(full, "fp32", size)
        results[tag] = {
            "gmac": {
                "mobile": count_macs(mobile, *size) / 1e9,
                "full": count_macs(full, *size) / 1e9,
            },
            "keras_ms": _keras_ms(mobile, size, repeats),
            "full_fp32_tflite_ms": {
                str(t): _tflite_ms(full_fp32, size, t, repeats) for t in threads
            },
            "tflite_ms": {
                variant: {str(t): _tflite_ms(flatbuffer, size, t, repeats) for t in threads}
                for variant, flatbuffer in flatbuffers.items()
            },
        }
    return results


def ratios(results, threads):
    lines = [f"{results['model']} on {results['cpu']}"]
    for tag, entry in results.items():
        if tag in ("model", "cpu"):
            continue
        gmac = entry["gmac"]
        lines.append(
            f"{tag}: mobile {gmac['mobile']:.2f} GMAC, full {gmac['full']:.1f} GMAC; "
            f"mobile Keras {entry['keras_ms']:.0f} ms ({max(threads)} threads)"
        )
        for variant, by_threads in entry["tflite_ms"].items():
            cells = ", ".join(f"{t} thr {ms:.1f} ms" for t, ms in by_threads.items())
            lines.append(f"  mobile {variant:20s} {cells}")
        cells = ", ".join(f"{t} thr {ms:.0f} ms" for t, ms in entry["full_fp32_tflite_ms"].items())
        lines.append(f"  full fp32 (yardstick)      {cells}")
        for count in map(str, threads):
            int8 = entry["tflite_ms"]["int8"][count]
            fp32 = entry["tflite_ms"]["fp32"][count]
            full = entry["full_fp32_tflite_ms"][count]
            lines.append(
                f"  {count} thread(s): mobile int8 / full fp32 TFLite = {int8 / full:.3f} "
                f"(target <= {TARGET_INT8_VS_FULL_FP32}); mobile int8 = {int8:.1f} ms "
                f"(target <= {TARGET_INT8_VNNI_MS:.0f} ms at 256x256, 2 threads, VNNI); "
                f"mobile fp32 TFLite / Keras = {fp32 / entry['keras_ms']:.2f}"
            )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="mobile", help="preset name or .keras file")
    parser.add_argument("--sizes", default="256x256,720x1280", help="HEIGHTxWIDTH list")
    parser.add_argument("--threads", default="1,2", help="XNNPACK thread counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median)")
    parser.add_argument("--calibration_images", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in text.split("x")) for text in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    results = run(args.weights, sizes, threads, args.repeats, args.calibration_images)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(ratios(results, threads)))


if __name__ == "__main__":
    main()
