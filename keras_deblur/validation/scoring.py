"""Scoring a generator on the validation pairs: gain over the blurred input per blur class.

gain = PSNR(output, sharp) - PSNR(blurred input, sharp), in dB, with PSNR from
`keras_deblur.metrics` (scikit-image's definition), for the shake classes,
each PSNR counted as at most `VISIBLE_PSNR_DB` (50 dB, 0.8 levels RMS): a
shake leaves flat crops (sky, a wall) at 57-74 dB, where rounding a few pixels
by one level moved a crop's gain by -4 dB and swung the class mean with a
change nobody can see.
The unblurred and defocus classes have the sharp image as input (infinite
PSNR), so their gain is the PSNR loss the model's error would cause on top of
an input at `REFERENCE_PSNR_DB` (30 dB, about the blurred inputs of the shake
classes): `-10 log10(1 + MSE(output, sharp) / MSE_30dB)`. It is 0 for a model
that leaves them alone and on the same dB scale as the shake gains (an output
at 44 dB from the sharp photo, 1.6 levels RMS, scores -0.17 dB; unsharp
masking of a sharp photo, about 30 dB, -3 dB). PSNRs of identical images are
reported as `PSNR_CAP_DB`.

Standard errors are over photos, not crops: crops of one photo share its
content, so the crops of a class are clustered by photo and the error of their
mean is the cluster-robust one (`clustered_mean`). A class drawn from a single
photo has no between-photo spread to measure; its error is then over crops and
labelled so ("se_over": "crops"), which understates it. The plain error over
crops ("gain_se_crops") is reported beside it: how finely the fixed set pins a
mean down, which is what separates two models scored on it.

`val_score`, the one number that picks the best generator:

    mean(gain_short, gain_long) - sum over {unblurred, defocus} of max(0, -gain - 0.1)

the mean gain on the two shake classes, minus any damage beyond 0.1 dB that
the model does to photos it should leave alone (classes absent from the set
count 0).
"""

import math
import time

import numpy as np

from keras_deblur import baselines, metrics
from keras_deblur.inference import deblur, from_model_range, to_model_range
from keras_deblur.validation.manifest import CLASSES, SHAKE_CLASSES, STILL_CLASSES

PSNR_CAP_DB = 100.0
VISIBLE_PSNR_DB = 50.0
REFERENCE_PSNR_DB = 30.0
DAMAGE_TOLERANCE_DB = 0.1
SAMPLE_COLUMNS = (
    "id",
    "photo",
    "class",
    "whole",
    "psnr_blurred",
    "psnr_deblurred",
    "gain",
    "unsharp_gain",
    "ssim_blurred",
    "ssim_deblurred",
    "ssim_gain",
)


def capped_psnr(sharp, image, cap=PSNR_CAP_DB):
    """`metrics.psnr(sharp, image)` in dB, at most `cap` (identical images give `cap`)."""
    return min(metrics.psnr(sharp, image), cap)


def still_gain(sharp, image):
    """Gain in dB of a model output for an unblurred input (see the module docstring).

    Args:
        sharp: uint8 array, the input and target.
        image: uint8 array of the same shape, the model's output.

    Returns:
        float <= 0: `-10 log10(1 + MSE(image, sharp) / MSE_ref)`, MSE_ref the
        MSE at `REFERENCE_PSNR_DB`.
    """
    mse = np.mean((np.asarray(sharp, np.float64) - np.asarray(image, np.float64)) ** 2)
    reference = metrics.DATA_RANGE**2 / 10.0 ** (REFERENCE_PSNR_DB / 10.0)
    return float(-10.0 * math.log10(1.0 + mse / reference))


def _gain(sample, sharp, psnr_blurred, image):
    if sample["class"] in STILL_CLASSES:
        return still_gain(sharp, image)
    return capped_psnr(sharp, image, VISIBLE_PSNR_DB) - min(psnr_blurred, VISIBLE_PSNR_DB)


def clustered_mean(values, clusters):
    """Mean of `values` and its standard error, clustered by `clusters` (photos).

    The cluster-robust (sandwich) error of a mean:
    `sqrt(G / (G - 1) * sum_g (sum_{i in g} (x_i - mean))^2) / n` over G clusters.
    With fewer than 2 clusters it falls back to the plain error over values.

    Args:
        values: sequence of float.
        clusters: sequence of hashable, one per value (e.g. photo names).

    Returns:
        `(mean, standard_error, se_over)`; `se_over` is "photos" or "crops".
    """
    values = np.asarray(values, np.float64)
    clusters = list(clusters)
    n = values.size
    if n == 0:
        return math.nan, math.nan, "photos"
    mean = float(values.mean())
    names = sorted(set(clusters))
    if len(names) < 2:
        se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        return mean, se, "crops"
    sums = np.array(
        [sum(v - mean for v, c in zip(values, clusters, strict=True) if c == g) for g in names]
    )
    groups = len(names)
    return mean, float(math.sqrt(groups / (groups - 1) * np.sum(sums**2)) / n), "photos"


def crop_standard_error(values):
    """Plain standard error of the mean over values, as if every crop were independent.

    It says how well a mean over crops of *these* photos is pinned down (the
    resolution between two models on this fixed set), not how it carries over
    to new photos (`clustered_mean`'s error says that).
    """
    values = np.asarray(values, np.float64)
    return float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan


def _reference_scores(pairs, with_ssim):
    """Model-independent scores per sample, computed once and kept on `pairs`."""
    if pairs.reference is not None and (
        pairs.reference["ssim_blurred"] is not None or not with_ssim
    ):
        return pairs.reference
    unsharp = [baselines.unsharp_mask(image) for image in pairs.blurred]
    psnr_blurred = [capped_psnr(s, b) for s, b in zip(pairs.sharp, pairs.blurred, strict=True)]
    pairs.reference = {
        "psnr_blurred": psnr_blurred,
        "unsharp_gain": [
            _gain(*args)
            for args in zip(pairs.samples, pairs.sharp, psnr_blurred, unsharp, strict=True)
        ],
        "ssim_blurred": None,
    }
    if with_ssim:
        pairs.reference["ssim_blurred"] = [
            metrics.ssim(s, b) for s, b in zip(pairs.sharp, pairs.blurred, strict=True)
        ]
    return pairs.reference


def predict(generator, pairs, batch_size=16):
    """The generator's outputs for every blurred image of `pairs`, as uint8 arrays.

    Runs of consecutive crops of one shape go through `predict_on_batch` in
    batches of `batch_size` (sides must be multiples of 4, as crops are); whole
    photos go through `keras_deblur.inference.deblur` (padding, tiling).
    """
    outputs = [None] * len(pairs)
    start = 0
    while start < len(pairs):
        if pairs.samples[start]["whole"]:
            outputs[start] = deblur(generator, pairs.blurred[start])
            start += 1
            continue
        stop = start + 1
        while (
            stop < len(pairs)
            and stop - start < batch_size
            and not pairs.samples[stop]["whole"]
            and pairs.blurred[stop].shape == pairs.blurred[start].shape
        ):
            stop += 1
        batch = to_model_range(np.stack(pairs.blurred[start:stop]))
        result = np.asarray(generator.predict_on_batch(batch), np.float32)
        outputs[start:stop] = list(from_model_range(result))
        start = stop
    return outputs


def score_outputs(pairs, outputs, with_ssim=True):
    """Per-sample rows and per-class summaries for given model outputs.

    Args:
        pairs: `ValidationPairs`.
        outputs: list of uint8 arrays, one per pair, shaped like the inputs.
        with_ssim: bool. Also score SSIM (slower). Defaults to True.

    Returns:
        dict: "samples" (list of row dicts, `SAMPLE_COLUMNS`), "classes"
        (class -> summary, see `summarise`), "val_score" (float).
    """
    reference = _reference_scores(pairs, with_ssim)
    rows = []
    for index, (sample, sharp, output) in enumerate(
        zip(pairs.samples, pairs.sharp, outputs, strict=True)
    ):
        psnr_deblurred = capped_psnr(sharp, output)
        row = {
            "id": sample["id"],
            "photo": sample["photo"],
            "class": sample["class"],
            "whole": sample["whole"],
            "psnr_blurred": reference["psnr_blurred"][index],
            "psnr_deblurred": psnr_deblurred,
            "gain": _gain(sample, sharp, reference["psnr_blurred"][index], output),
            "unsharp_gain": reference["unsharp_gain"][index],
            "ssim_blurred": math.nan,
            "ssim_deblurred": math.nan,
            "ssim_gain": math.nan,
        }
        if with_ssim:
            row["ssim_blurred"] = reference["ssim_blurred"][index]
            row["ssim_deblurred"] = metrics.ssim(sharp, output)
            row["ssim_gain"] = row["ssim_deblurred"] - row["ssim_blurred"]
        rows.append(row)
    classes = summarise(rows)
    return {"samples": rows, "classes": classes, "val_score": val_score(classes)}


def summarise(rows):
    """Per-class summary of sample rows.

    Returns:
        dict class -> {"n", "n_photos", "gain", "gain_se", "se_over", "gain_se_crops",
        "worst_photo", "worst_photo_gain" (the photo with the lowest mean gain),
        "worst_sample", "worst_sample_gain", "unsharp_gain", "unsharp_gain_se",
        "ssim_gain", "psnr_blurred", "psnr_deblurred"}, for the classes present,
        in `CLASSES` order.
    """
    summary = {}
    for name in CLASSES:
        members = [row for row in rows if row["class"] == name]
        if not members:
            continue
        photos = [row["photo"] for row in members]
        gains = [row["gain"] for row in members]
        gain, gain_se, se_over = clustered_mean(gains, photos)
        unsharp, unsharp_se, _ = clustered_mean([row["unsharp_gain"] for row in members], photos)
        per_photo = {
            photo: float(np.mean([row["gain"] for row in members if row["photo"] == photo]))
            for photo in sorted(set(photos))
        }
        worst_photo = min(per_photo, key=per_photo.get)
        worst = min(members, key=lambda row: row["gain"])
        summary[name] = {
            "n": len(members),
            "n_photos": len(per_photo),
            "gain": gain,
            "gain_se": gain_se,
            "se_over": se_over,
            "gain_se_crops": crop_standard_error(gains),
            "worst_photo": worst_photo,
            "worst_photo_gain": per_photo[worst_photo],
            "worst_sample": worst["id"],
            "worst_sample_gain": worst["gain"],
            "unsharp_gain": unsharp,
            "unsharp_gain_se": unsharp_se,
            "ssim_gain": float(np.mean([row["ssim_gain"] for row in members])),
            "psnr_blurred": float(np.mean([row["psnr_blurred"] for row in members])),
            "psnr_deblurred": float(np.mean([row["psnr_deblurred"] for row in members])),
        }
    return summary


def val_score(classes):
    """The selection score from per-class summaries (see the module docstring).

    NaN when neither shake class is present.
    """
    shakes = [classes[name]["gain"] for name in SHAKE_CLASSES if name in classes]
    if not shakes:
        return math.nan
    damage = sum(
        max(0.0, -classes[name]["gain"] - DAMAGE_TOLERANCE_DB)
        for name in STILL_CLASSES
        if name in classes
    )
    return float(np.mean(shakes) - damage)


def score_generator(generator, pairs, batch_size=16, with_ssim=True):
    """Scores a generator on validation pairs.

    Args:
        generator: `keras.Model` from `(batch, H, W, 3)` in [-1, 1] to the same.
        pairs: `ValidationPairs` (crops, whole photos or both).
        batch_size: int. Crops per `predict_on_batch` call. Defaults to 16.
        with_ssim: bool. Also score SSIM. Defaults to True.

    Returns:
        dict: as `score_outputs`, plus "seconds" (wall time of the model's
        predictions) and "n" (samples).

    Example:

    >>> pairs = load_pairs(load_manifest(), whole=False)
    >>> score_generator(load_generator("mobile"), pairs)["classes"]["long"]["gain"]
    """
    start = time.perf_counter()
    outputs = predict(generator, pairs, batch_size)
    seconds = time.perf_counter() - start
    result = score_outputs(pairs, outputs, with_ssim)
    result.update(seconds=seconds, n=len(pairs))
    return result


def paired_difference(result_a, result_b):
    """Per-class mean of `gain_a - gain_b` over the same samples, with its clustered error.

    The error of a difference between two models on the same pairs is much
    smaller than either model's own error, since the photos' difficulty cancels.

    Returns:
        dict class -> {"difference", "se", "se_over", "se_crops", "n"}.

    Raises:
        ValueError: the two results are not over the same samples.
    """
    ids_a = [row["id"] for row in result_a["samples"]]
    if ids_a != [row["id"] for row in result_b["samples"]]:
        raise ValueError("paired_difference needs two results over the same samples")
    difference = {}
    for name in CLASSES:
        rows = [
            (a["photo"], a["gain"] - b["gain"])
            for a, b in zip(result_a["samples"], result_b["samples"], strict=True)
            if a["class"] == name
        ]
        if rows:
            values = [d for _, d in rows]
            mean, se, se_over = clustered_mean(values, [p for p, _ in rows])
            difference[name] = {
                "difference": mean,
                "se": se,
                "se_over": se_over,
                "se_crops": crop_standard_error(values),
                "n": len(rows),
            }
    return difference


def format_table(result, title="validation", difference=None):
    """A plain-text table of a `score_generator` result (and optionally a paired difference)."""
    lines = [
        f"{title}: val_score {result['val_score']:+.3f} dB, {result['n']} samples, "
        f"model time {result['seconds']:.1f} s",
        f"{'class':<10} {'n':>4} {'photos':>6} {'gain dB':>8} {'SE':>6} {'over':<6} "
        f"{'SE crops':>8} {'unsharp':>8} {'SE':>6} {'SSIM gain':>9}  worst photo (gain)",
    ]
    for name, row in result["classes"].items():
        lines.append(
            f"{name:<10} {row['n']:>4} {row['n_photos']:>6} {row['gain']:>+8.3f} "
            f"{row['gain_se']:>6.3f} {row['se_over']:<6} {row['gain_se_crops']:>8.3f} "
            f"{row['unsharp_gain']:>+8.3f} "
            f"{row['unsharp_gain_se']:>6.3f} {row['ssim_gain']:>+9.4f}  "
            f"{row['worst_photo']} ({row['worst_photo_gain']:+.2f})"
        )
    if difference:
        lines.append("paired difference (this model - baseline), dB:")
        for name, row in difference.items():
            lines.append(
                f"{name:<10} {row['n']:>4} {row['difference']:>+8.3f}  SE {row['se']:.3f} "
                f"over {row['se_over']}, {row['se_crops']:.3f} over crops"
            )
    return "\n".join(lines)
