"""TFLite (LiteRT, XNNPACK) latency of every export variant next to Keras, in one run.

    python bench/bench_tflite.py [--weights G.keras] [--repeats 5] [--sizes 256x256,720x1280]
                                 [--threads 1,2] [--json]

For each size, converts the generator (default: the full 9-block generator
with random weights, which time the same as trained ones) to fp32, fp16,
dynamic-range, int8 and int8-with-float-InstanceNorm models with that fixed
input size, plus an fp32 dynamic-shape model resized to it, all as the export
writes them (the XNNPACK rewrite, Winograd for fp32), and
for comparison fp32 without Winograd (`fp32_direct`) and fp32 of the Keras
layers as they are (`fp32_keras_layers`, no rewrite). Each is timed for one
inference (median of `--repeats`, after a warm-up) with 1 and 2 XNNPACK threads. Keras is timed
in the same run on the same input (`predict_on_batch`, TensorFlow limited to
the largest thread count, so compare it with that row). Printed ratios and
the issue's targets:

- fp32 TFLite / Keras            target <= 0.8
- int8 TFLite / fp32 TFLite      target <= 0.5 (also against fp32_direct, the
                                 same direct convs as int8)
- dynamic-shape / fixed-size fp32 (the cost of resizing at run time)
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET_FP32_VS_KERAS = 0.8
TARGET_INT8_VS_FP32 = 0.5
VARIANTS = ("fp32", "fp16", "dynamic", "int8")


def _median_ms(fn, repeats):
    fn()  # warm-up: graph tracing, XNNPACK weight packing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


def _keras_ms(model, size, repeats):
    image = np.random.default_rng(0).uniform(-1, 1, (1, *size, 3)).astype(np.float32)
    return _median_ms(lambda: model.predict_on_batch(image), repeats)


def _tflite_ms(flatbuffer, size, threads, repeats):
    from export.runtime import TFLiteGenerator

    generator = TFLiteGenerator(flatbuffer, num_threads=threads)
    image = np.random.default_rng(0).uniform(-1, 1, (1, *size, 3)).astype(np.float32)
    return _median_ms(lambda: generator.predict_on_batch(image), repeats)


def _calibration(size, count):
    """Blurred crops for int8 calibration (random crops of the embedded photos)."""
    from export.calibration import embedded_pairs

    side = min(size)
    crops = embedded_pairs("train", (side, side), count, seed=0)[0]
    # Full-size calibration inputs: tile the square crops over the frame.
    return [
        np.tile(crop, (size[0] // side + 1, size[1] // side + 1, 1))[: size[0], : size[1]]
        for crop in crops
    ]


def run(weights, sizes, threads, repeats, num_res_blocks, calibration_images):
    import tensorflow as tf

    # Keras gets the same cores as the TFLite runs' largest thread count.
    tf.config.threading.set_intra_op_parallelism_threads(max(threads))
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from export.calibration import representative_dataset
    from export.convert import convert_generator
    from keras_deblur import build_generator, load_generator

    model = (
        load_generator(weights)
        if weights
        else build_generator(num_res_blocks=num_res_blocks, dropout_rate=0.0)
    )
    results = {"model": weights or f"random weights, {num_res_blocks} residual blocks"}
    for size in sizes:
        tag = f"{size[0]}x{size[1]}"
        entry = {"keras_ms": _keras_ms(model, size, repeats), "tflite_ms": {}}
        images = _calibration(size, calibration_images)
        flatbuffers = {
            variant: convert_generator(
                model, variant, size, representative_dataset=representative_dataset(images)
            )
            for variant in VARIANTS
        }
        flatbuffers["int8_float_norm"] = convert_generator(
            model,
            "int8",
            size,
            representative_dataset=representative_dataset(images),
            float_norm=True,
        )
        flatbuffers["fp32_dynamic_shape"] = convert_generator(model, "fp32", None)
        flatbuffers["fp32_direct"] = convert_generator(model, "fp32", size, winograd="off")
        flatbuffers["fp32_keras_layers"] = convert_generator(
            model, "fp32", size, optimize_graph=False
        )
        for variant, flatbuffer in flatbuffers.items():
            entry["tflite_ms"][variant] = {
                str(count): _tflite_ms(flatbuffer, size, count, repeats) for count in threads
            }
        results[tag] = entry
    return results


def ratios(results, threads):
    lines = []
    for tag, entry in results.items():
        if tag == "model":
            continue
        keras_ms = entry["keras_ms"]
        lines.append(f"{tag}: Keras {keras_ms:.0f} ms ({max(threads)} threads)")
        for variant, by_threads in entry["tflite_ms"].items():
            cells = ", ".join(f"{t} thr {ms:.0f} ms" for t, ms in by_threads.items())
            lines.append(f"  {variant:20s} {cells}")
        for count in map(str, threads):
            ms = {variant: by_threads[count] for variant, by_threads in entry["tflite_ms"].items()}
            fp32 = ms["fp32"]
            lines.append(
                f"  {count} thread(s): fp32 TFLite / Keras = {fp32 / keras_ms:.2f} "
                f"(target <= {TARGET_FP32_VS_KERAS}); int8 / fp32 TFLite = {ms['int8'] / fp32:.2f} "
                f"(target <= {TARGET_INT8_VS_FP32}); int8 / fp32 direct convs = "
                f"{ms['int8'] / ms['fp32_direct']:.2f}; rewrite gain: fp32 Keras layers / fp32 = "
                f"{ms['fp32_keras_layers'] / fp32:.2f}; int8 with float norms / fp32 = "
                f"{ms['int8_float_norm'] / fp32:.2f}; fp16 / fp32 = {ms['fp16'] / fp32:.2f}; "
                f"dynamic-range / fp32 = {ms['dynamic'] / fp32:.2f}; dynamic-shape / fixed = "
                f"{ms['fp32_dynamic_shape'] / fp32:.2f}"
            )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="generator .keras file (default: random weights)")
    parser.add_argument("--sizes", default="256x256,720x1280", help="HEIGHTxWIDTH list")
    parser.add_argument("--threads", default="1,2", help="XNNPACK thread counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median)")
    parser.add_argument("--num_res_blocks", type=int, default=9, help="random-weight model size")
    parser.add_argument("--calibration_images", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in text.split("x")) for text in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    results = run(
        args.weights, sizes, threads, args.repeats, args.num_res_blocks, args.calibration_images
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(results["model"])
        print("\n".join(ratios(results, threads)))


if __name__ == "__main__":
    main()
