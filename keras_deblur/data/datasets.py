"""tf.data pipelines of (blurred, sharp) pairs that stream from disk.

Three sources, as in DeblurGAN's training: paired folders of real blur (GoPro
layout), folders of sharp photos blurred on the fly with random-trajectory
kernels, and a mix of both (2 synthetic : 1 real by default, as in the paper).
A fourth has no limit: procedural dead-leaves images (`dead_leaves.py`)
blurred the same way, to mix with the photos (`mix_procedural`).

Every function returns an unbatched `tf.data.Dataset` of `(blurred, sharp)`
float32 tensors `(height, width, 3)` in [-1, 1]. Only file paths live in the
dataset; images are decoded (and blurred) in a parallel `map`, so memory does
not grow with the number of photos. Randomness is drawn per element from a
seed stream, so a given `seed` gives the same samples whatever the
parallelism.

Bad files (missing, zero bytes, corrupt, not an image) are found up front with
a cheap header check, skipped with a one-line warning naming the file, and
counted in a summary; a file that still fails to decode later is skipped the
same way instead of stopping training.

Images smaller than `crop_size` are upscaled (bicubic, aspect ratio kept) so
that their shorter side equals `crop_size`. Upscaling keeps every pixel real
content; reflect-padding would instead teach the network mirrored seams.
Full frames (`crop_size=None`) are centre-trimmed to multiples of 4, which the
generator needs.
"""

import collections
import concurrent.futures
import functools
import logging
import os
import threading

import cv2
import numpy as np
import tensorflow as tf

from keras_deblur.data.augment import (
    colour_table,
    draw_rescale,
    jitter_colours,
    jpeg_compress,
    random_dihedral,
    random_rescale,
    rescale_region,
)
from keras_deblur.data.dead_leaves import dead_leaves_image
from keras_deblur.data.depth_of_field import (
    MAX_RADIUS_RANGE,
    layered_dead_leaves,
    margin_for,
    misfocused_depth_of_field,
    photo_depth_of_field,
    soft_all_over,
)
from keras_deblur.data.embedded import embedded_photo_paths
from keras_deblur.data.images import (
    ImageReadError,
    list_images,
    read_image,
    to_rgb_uint8,
)
from keras_deblur.data.motion_blur import blur_window, random_psf
from keras_deblur.data.paired_folders import (
    check_image_files,
    find_image_pairs,
    probe_image,
    report_skips,
)
from keras_deblur.inference import to_model_range

logger = logging.getLogger(__name__)

# Validation data is the same every time unless a seed is given.
VALIDATION_SEED = 0
_SIZE_MULTIPLE = 4
_SEED_MASK = 0x7FFFFFFFFFFFFFFF
_KERNEL_OPTIONS = ("max_length", "exposure", "fraction", "num_steps")
# How a sharp image is defocused before the shake, by kind; the share of pairs of
# each kind is the blur option `<kind>_ratio`, drawn in this order (`_draw_defocus`).
_DEFOCUS_KINDS = {
    "depth_of_field": photo_depth_of_field,
    "soft": soft_all_over,
    "misfocus": misfocused_depth_of_field,
}
_DEFOCUS_RATIOS = tuple(f"{kind}_ratio" for kind in _DEFOCUS_KINDS)
_DEGRADATION_OPTIONS = ("noise_ratio", "noise_levels", "jpeg_ratio", "jpeg_quality")
_BLUR_OPTIONS = (
    _KERNEL_OPTIONS
    + ("gamma", "noise_std", "unblurred_ratio")
    + _DEFOCUS_RATIOS
    + _DEGRADATION_OPTIONS
)
# Sensor noise of the noisy pairs: its standard deviation at mid-grey, in levels
# of 255, is drawn from this range; most of it is shot noise, as in daylight.
NOISE_LEVELS = (1.0, 4.0)
_SHOT_SHARE = (0.5, 0.9)
# JPEG quality of the compressed pairs, drawn uniformly (bounds included).
JPEG_QUALITY = (60, 95)
# Decoded sharp photos kept in memory by each synthetic dataset: a 1024-pixel
# PNG takes ~50-100 ms to decode on 2 cores, several times the blur of a
# 128x128 crop, and on-the-fly blur reads each photo thousands of times. Photos
# past the budget are decoded each time, as before.
PHOTO_CACHE_BYTES = 1 << 30


def _cover(image, crop_size):
    """Upscales so both sides are at least `crop_size`, keeping the aspect ratio."""
    height, width = image.shape[:2]
    if min(height, width) >= crop_size:
        return image
    scale = crop_size / min(height, width)
    size = (max(crop_size, round(width * scale)), max(crop_size, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def _window(rng, shape, crop_size, training):
    """Top-left corner of a crop: random when training, centred otherwise."""
    height, width = shape[:2]
    if training:
        return int(rng.integers(height - crop_size + 1)), int(rng.integers(width - crop_size + 1))
    return (height - crop_size) // 2, (width - crop_size) // 2


def _trim_to_multiple(image):
    height, width = image.shape[:2]
    new_height, new_width = height - height % _SIZE_MULTIPLE, width - width % _SIZE_MULTIPLE
    if new_height == 0 or new_width == 0:
        raise ImageReadError(f"image of {height}x{width} is smaller than {_SIZE_MULTIPLE}x4")
    top, left = (height - new_height) // 2, (width - new_width) // 2
    return image[top : top + new_height, left : left + new_width]


def _load_pair(blurred_path, sharp_path, rng, crop_size, training, resize):
    blurred = to_rgb_uint8(read_image(blurred_path))
    sharp = to_rgb_uint8(read_image(sharp_path))
    if blurred.shape != sharp.shape:
        raise ImageReadError(
            f"{blurred_path}: size {blurred.shape[1]}x{blurred.shape[0]} differs from "
            f"{sharp_path} ({sharp.shape[1]}x{sharp.shape[0]})"
        )
    if resize is not None:
        size = (int(resize[1]), int(resize[0]))
        blurred = cv2.resize(blurred, size, interpolation=cv2.INTER_AREA)
        sharp = cv2.resize(sharp, size, interpolation=cv2.INTER_AREA)
    if crop_size is None:
        blurred, sharp = _trim_to_multiple(blurred), _trim_to_multiple(sharp)
    else:
        blurred, sharp = _cover(blurred, crop_size), _cover(sharp, crop_size)
        top, left = _window(rng, sharp.shape, crop_size, training)
        blurred = blurred[top : top + crop_size, left : left + crop_size]
        sharp = sharp[top : top + crop_size, left : left + crop_size]
    return blurred, sharp


class PhotoCache:
    """Decoded sharp photos by path, up to `budget` bytes; safe from tf.data's threads.

    Keyed by path, size and modification time, so a replaced file is read again.
    Each `synthetic_dataset` has its own, so one run's photos never fill another's.
    """

    def __init__(self, budget=None):
        self.budget = PHOTO_CACHE_BYTES if budget is None else budget
        self._images = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def read(self, path):
        """`to_rgb_uint8(read_image(path))`, read-only, from memory after the first time."""
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            image = self._images.get(key)
        if image is not None:
            return image
        image = to_rgb_uint8(read_image(path))  # outside the lock: decodes run in parallel
        image.setflags(write=False)
        with self._lock:
            if key not in self._images and self._bytes + image.nbytes <= self.budget:
                self._images[key] = image
                self._bytes += image.nbytes
        return image


def _draw_kernel(rng, blur_options):
    """A random motion kernel, or the identity for the `unblurred_ratio` share of pairs."""
    unblurred_ratio = blur_options.get("unblurred_ratio", 0.0)
    if unblurred_ratio and rng.random() < unblurred_ratio:
        return np.ones((1, 1), np.float32)  # the identity: the pair is (sharp, sharp)
    return random_psf(rng, **{k: v for k, v in blur_options.items() if k in _KERNEL_OPTIONS})


def _draw_noise(rng, blur_options):
    """`(noise_std, shot_noise)` for `synthesize_blur`: sensor noise for `noise_ratio` of pairs."""
    noise_std = blur_options.get("noise_std", 0.0)
    noise_ratio = blur_options.get("noise_ratio", 0.0)
    if not (noise_ratio and rng.random() < noise_ratio):
        return noise_std, 0.0
    level = rng.uniform(*blur_options.get("noise_levels", NOISE_LEVELS)) / 255.0
    shot_share = rng.uniform(*_SHOT_SHARE)
    # Variance shot_noise * v + read ** 2 is level ** 2 at mid-grey (v = 0.5).
    read_variance = (1.0 - shot_share) * level**2
    return float(np.sqrt(noise_std**2 + read_variance)), 2.0 * shot_share * level**2


def _degrade_window(sharp, rng, kernel, top, left, size, blur_options):
    """Blurs, adds noise to and compresses one window of `sharp`; returns both windows."""
    noise_std, shot_noise = _draw_noise(rng, blur_options)
    blurred, sharp = blur_window(
        sharp,
        (top, left, *size),
        rng,
        kernel,
        gamma=blur_options.get("gamma", 1.0),
        noise_std=noise_std,
        shot_noise=shot_noise,
    )
    jpeg_ratio = blur_options.get("jpeg_ratio", 0.0)
    if jpeg_ratio and rng.random() < jpeg_ratio:
        low, high = blur_options.get("jpeg_quality", JPEG_QUALITY)
        blurred = jpeg_compress(blurred, int(rng.integers(low, high + 1)))
    return blurred, sharp


def _blur_on_the_fly(sharp_path, rng, crop_size, training, augment, blur_options, photos):
    sharp = photos.read(sharp_path)
    augment = training and augment
    if augment and crop_size is not None and min(sharp.shape[:2]) >= crop_size:
        blurred, sharp = _augmented_window(sharp, rng, crop_size, blur_options)
        return random_dihedral(rng, blurred, sharp)
    if augment:  # before the blur, so the blur and the noise stay those of a camera
        sharp = jitter_colours(random_rescale(sharp, rng, min_side=crop_size), rng)
    kernel = _draw_kernel(rng, blur_options)
    if crop_size is None:
        sharp = _trim_to_multiple(sharp)
        top, left, size = 0, 0, sharp.shape[:2]
    else:
        sharp = _cover(sharp, crop_size)
        top, left = _window(rng, sharp.shape, crop_size, training)
        size = (crop_size, crop_size)
    defocus = _draw_defocus(rng, blur_options)
    if defocus:
        sharp, top, left = _defocused_region(sharp, rng, kernel, (top, left, *size), defocus)
    blurred, sharp = _degrade_window(sharp, rng, kernel, top, left, size, blur_options)
    if augment:
        blurred, sharp = random_dihedral(rng, blurred, sharp)
    return blurred, sharp


def _draw_defocus(rng, blur_options):
    """How a pair's sharp image is defocused before the shake, or None.

    One draw (none when every share is 0): the `depth_of_field_ratio` share of
    pairs gets shallow depth of field, the next `soft_ratio` share is made a
    little soft all over, the next `misfocus_ratio` share is misfocused.
    """
    shares = [blur_options.get(name, 0.0) for name in _DEFOCUS_RATIOS]
    if not any(shares):
        return None
    draw = rng.random()
    for kind, bound in zip(_DEFOCUS_KINDS, np.cumsum(shares), strict=True):
        if draw < bound:
            return kind
    return None


def _defocus(kind, rng, image):
    """`image` defocused as `kind` says (a key of `_DEFOCUS_KINDS`)."""
    return _DEFOCUS_KINDS[kind](rng, image)


def _region_around(window, margin, shape):
    """`(top, left, height, width)` of a window plus `margin`, clipped to an image of `shape`."""
    top, left, height, width = window
    region_top, region_left = max(top - margin, 0), max(left - margin, 0)
    return (
        region_top,
        region_left,
        min(top + height + margin, shape[0]) - region_top,
        min(left + width + margin, shape[1]) - region_left,
    )


def _defocused_region(sharp, rng, kernel, window, kind):
    """The window plus the blur's and the defocus's margins, defocused (see `_defocus`).

    Returns the region and the window's top-left corner inside it, so the shake
    that follows blurs the defocused scene as a camera would.
    """
    margin = kernel.shape[0] // 2 + margin_for(MAX_RADIUS_RANGE[1])
    top, left, height, width = _region_around(window, margin, sharp.shape)
    region = sharp[top : top + height, left : left + width]
    return _defocus(kind, rng, region), window[0] - top, window[1] - left


def _augmented_window(photo, rng, crop_size, blur_options):
    """Rescales, jitters and blurs one training crop as if done to the whole photo.

    The same draws in the same order as rescaling and jittering the whole
    photo, then cropping a random window and blurring it, but only the window
    and the kernel's margin around it (clipped to the rescaled photo, so the
    borders reflect where the whole photo's would) are rescaled and jittered.
    On the campaign's photos (640 to 1024 pixels wide) a 128-pixel training
    pair took 3.2 CPU ms this way against 7.0 for the whole photo. A pair
    given depth of field (`depth_of_field_ratio`) takes the defocus's margin too.
    """
    size = draw_rescale(rng, photo.shape, min_side=crop_size)
    table = colour_table(rng)
    kernel = _draw_kernel(rng, blur_options)
    top, left = _window(rng, size, crop_size, training=True)
    defocus = _draw_defocus(rng, blur_options)
    margin = max(kernel.shape) // 2  # as blur_window's
    if defocus:
        margin += margin_for(MAX_RADIUS_RANGE[1])
    region_box = _region_around((top, left, crop_size, crop_size), margin, size)
    if size == photo.shape[:2]:
        region_top, region_left, rows, cols = region_box
        region = photo[region_top : region_top + rows, region_left : region_left + cols]
    else:
        region = rescale_region(photo, size, region_box)
    region = jitter_colours(region, rng, table)
    if defocus:
        region = _defocus(defocus, rng, region)
    window = (top - region_box[0], left - region_box[1])
    crop = (crop_size, crop_size)
    return _degrade_window(region, rng, kernel, *window, crop, blur_options)


# Pairs cut from each dead-leaves canvas: drawing one takes ~8 CPU ms at a
# 128-pixel crop's canvas, ~8x the blur, and procedural pairs were about half of
# the campaign's input pipeline. Each pair of a canvas gets its own kernel,
# window, rotation, noise and compression.
PAIRS_PER_CANVAS = 4


class _SharedCanvases:
    """Canvases by group seed, made once by the first of the group's pairs to ask.

    tf.data decodes a group's pairs at the same time on different threads; the
    others wait for the first instead of drawing the same canvas again. Only
    the most recent groups are kept.
    """

    def __init__(self, make, keep=64):
        self._make = make
        self._keep = keep
        self._futures = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, group_seed):
        with self._lock:
            future = self._futures.get(group_seed)
            first = future is None
            if first:
                future = self._futures[group_seed] = concurrent.futures.Future()
                while len(self._futures) > self._keep:
                    self._futures.popitem(last=False)
        if first:
            try:
                future.set_result(self._make(group_seed))
            except BaseException as error:
                future.set_exception(error)
        return future.result()


def _procedural_group(group_seed, crop_size, count, blur_options, leaf_options):
    """One dead-leaves canvas and the `count` kernels of its pairs.

    The canvas covers the crop plus the largest kernel's margin. With
    `depth_of_field_ratio`, that share of canvases are layered scenes with one
    layer in focus (`depth_of_field.layered_dead_leaves`); with `soft_ratio`,
    that share are a little soft all over (`depth_of_field.soft_all_over`);
    with `misfocus_ratio`, misfocused (`depth_of_field.misfocused_depth_of_field`).
    """
    # Not the first pair's own stream, which is seeded by the same number.
    rng = np.random.default_rng(np.random.SeedSequence(group_seed & _SEED_MASK, spawn_key=(1,)))
    kernels = [_draw_kernel(rng, blur_options) for _ in range(count)]
    side = crop_size + 2 * (max(kernel.shape[0] for kernel in kernels) // 2)
    # Leaves as large as one pair's canvas, as when each pair had its own: a
    # larger rmax would soften the crops (5% less gradient at 4 pairs).
    leaf_options = {"rmax": crop_size + 2 * (kernels[0].shape[0] // 2), **leaf_options}
    defocus = _draw_defocus(rng, blur_options)
    if defocus == "depth_of_field":
        canvas = layered_dead_leaves(rng, (side, side), leaf_options=leaf_options)
    else:
        canvas = dead_leaves_image(rng, (side, side), **leaf_options)
        if defocus:
            canvas = _defocus(defocus, rng, canvas)
    canvas.setflags(write=False)
    return canvas, kernels


def _procedural_pair(group_seed, index, rng, crop_size, canvases, blur_options):
    """Pair `index` of its group's canvas: a window of the crop plus its kernel's margin, blurred.

    The crop is the window's centre, so every blurred pixel sees real content.
    """
    canvas, kernels = canvases.get(group_seed)
    kernel = kernels[index]
    margin = kernel.shape[0] // 2
    top, left = rng.integers(0, canvas.shape[0] - crop_size - 2 * margin + 1, size=2)
    window = (top + margin, left + margin, (crop_size, crop_size))
    blurred, sharp = _degrade_window(canvas, rng, kernel, *window, blur_options)
    return random_dihedral(rng, blurred, sharp)


def _make_example(load, crop_size, training, *args):
    """Runs in `tf.numpy_function`: paths and a seed in, model-range arrays out."""
    *paths, seed = args
    paths = [os.fsdecode(p) if isinstance(p, bytes) else int(p) for p in paths]
    rng = np.random.default_rng(int(seed) & _SEED_MASK)
    try:
        blurred, sharp = load(*paths, rng)
    except (ImageReadError, OSError, cv2.error) as error:
        message = str(error).strip().splitlines()[-1]
        names = [str(path) for path in paths]  # procedural pairs pass seeds, not paths
        if not any(name in message for name in names):
            message = f"{' + '.join(names)}: {message}"
        logger.warning("Skipping %s", message)
        empty = np.zeros((crop_size or _SIZE_MULTIPLE, crop_size or _SIZE_MULTIPLE, 3), np.float32)
        return empty, empty, np.bool_(False)
    if training and rng.random() < 0.5:
        blurred, sharp = blurred[:, ::-1], sharp[:, ::-1]
    return to_model_range(blurred), to_model_range(sharp), np.bool_(True)


def _decoder(load, crop_size, training):
    """A tf.data map function: `(paths, seed)` in, `(blurred, sharp, ok)` out."""
    make = functools.partial(_make_example, load, crop_size, training)
    shape = (crop_size, crop_size, 3) if crop_size else (None, None, 3)

    def decode(element_paths, element_seed):
        blurred, sharp, ok = tf.numpy_function(
            make, [*element_paths, element_seed], (tf.float32, tf.float32, tf.bool), stateful=False
        )
        blurred.set_shape(shape)
        sharp.set_shape(shape)
        ok.set_shape(())
        return blurred, sharp, ok

    return decode


def _seeds(seed, training):
    if seed is None and not training:
        seed = VALIDATION_SEED
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=training)


def _keep_good(dataset):
    return dataset.filter(lambda blurred, sharp, ok: ok).map(
        lambda blurred, sharp, ok: (blurred, sharp)
    )


def _stream(columns, load, crop_size, training, seed):
    """Shuffles paths, pairs each with a seed, decodes in parallel, drops failures."""
    paths = tf.data.Dataset.from_tensor_slices(tuple(columns))
    if training:
        paths = paths.shuffle(len(columns[0]), seed=seed, reshuffle_each_iteration=True)
    dataset = tf.data.Dataset.zip(paths, _seeds(seed, training))
    decode = _decoder(load, crop_size, training)
    return _keep_good(dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


def _check_crop_size(crop_size):
    if crop_size is not None and (int(crop_size) != crop_size or crop_size < 1):
        raise ValueError(
            f"crop_size must be a positive int or None. Received: crop_size={crop_size}"
        )


def paired_dataset(root, crop_size=256, training=True, resize=None, seed=None):
    """Real blurred/sharp pairs from folders (GoPro layout or flat).

    Args:
        root: str. Folder holding `blur/` and `sharp/` (flat) or scene folders
            that each hold them (GoPro: pass `GOPRO_Large/train`). Pairs are
            matched by relative path; unmatched files are an error.
        crop_size: int or None. Side of the square crops; both images of a
            pair are cropped at the same place. None keeps full frames
            (trimmed to multiples of 4). Defaults to 256.
        training: bool. True: shuffled each epoch, random crops, random
            horizontal flips. False: file order, centre crops, no flips.
            Defaults to True.
        resize: `(height, width)` or None. Resize both images first (the
            reference trains on GoPro frames resized to `(360, 640)`).
            Defaults to None.
        seed: int or None. Makes shuffling and crops reproducible.

    Returns:
        Unbatched `tf.data.Dataset` of `(blurred, sharp)`, float32
        `(crop_size, crop_size, 3)` in [-1, 1]; one pass over the pairs.

    Raises:
        FileNotFoundError, ValueError: see `find_image_pairs`; ValueError if
        no pair is usable.
    """
    _check_crop_size(crop_size)
    pairs = find_image_pairs(root)
    usable = []
    for blurred_path, sharp_path in pairs:
        try:
            blurred_size, sharp_size = probe_image(blurred_path), probe_image(sharp_path)
        except ImageReadError as error:
            logger.warning("Skipping pair: %s", error)
            continue
        if blurred_size != sharp_size:
            logger.warning(
                "Skipping pair: %s: size %dx%d differs from %s (%dx%d)",
                blurred_path,
                blurred_size[1],
                blurred_size[0],
                sharp_path,
                sharp_size[1],
                sharp_size[0],
            )
            continue
        usable.append((blurred_path, sharp_path))
    report_skips(os.fspath(root), len(pairs), len(pairs) - len(usable), "pairs")
    load = functools.partial(_load_pair, crop_size=crop_size, training=training, resize=resize)
    columns = ([b for b, _ in usable], [s for _, s in usable])
    return _stream(columns, load, crop_size, training, seed)


def _check_range(name, value, low=0.0, high=1.0):
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]. Received: {name}={value}")


def _check_pair(name, value, low, high, integer=False):
    """A `(low, high)` pair with `low <= first <= second <= high`, ints if `integer`."""
    try:
        first, second = value
        valid = low <= first <= second <= high
        if integer:
            valid = valid and int(first) == first and int(second) == second
    except (TypeError, ValueError):
        valid = False
    if not valid:
        kind = "ints" if integer else "numbers"
        raise ValueError(
            f"{name} must be two {kind} (low, high) with {low} <= low <= high <= {high}. "
            f"Received: {name}={value}"
        )


def check_blur_options(blur_options):
    """Checks the keyword options of `synthetic_dataset` and `procedural_dataset`.

    Raises:
        TypeError: an unknown option (the list of known ones follows).
        ValueError: one line naming the option out of range.
    """
    unknown = sorted(set(blur_options) - set(_BLUR_OPTIONS))
    if unknown:
        raise TypeError(f"Unknown blur options {unknown}; expected some of {list(_BLUR_OPTIONS)}")
    for name in ("unblurred_ratio", *_DEFOCUS_RATIOS, "noise_ratio", "jpeg_ratio"):
        if name in blur_options:
            _check_range(name, blur_options[name])
    defocused = sum(blur_options.get(name, 0.0) for name in _DEFOCUS_RATIOS)
    if defocused > 1.0:
        raise ValueError(f"{' + '.join(_DEFOCUS_RATIOS)} must be at most 1. Received: {defocused}")
    if "noise_levels" in blur_options:
        _check_pair("noise_levels", blur_options["noise_levels"], 0.0, 255.0)
    if "jpeg_quality" in blur_options:
        _check_pair("jpeg_quality", blur_options["jpeg_quality"], 1, 100, integer=True)


def synthetic_dataset(
    sharp, crop_size=256, training=True, seed=None, augment=False, **blur_options
):
    """Sharp photos blurred on the fly with random-trajectory kernels.

    Each element draws a new kernel (see `motion_blur.random_psf`), so every
    epoch sees new blur. Only the crop and a kernel-radius margin are blurred.

    Args:
        sharp: str or list of str. A folder (searched recursively), a glob, a
            file, or a list of image paths.
        crop_size: int or None. See `paired_dataset`. Defaults to 256.
        training: bool. See `paired_dataset`. When False, the blur of each
            photo is the same on every pass (seeded by `seed`, else by
            `VALIDATION_SEED`). Defaults to True.
        seed: int or None. Makes the kernels, crops and flips reproducible.
        augment: bool. When training, each photo is first downscaled by a
            random factor in `augment.RESCALE_RANGE` (area interpolation;
            the shorter side stays >= `crop_size`) and its colours,
            brightness and gamma jittered (`augment.jitter_colours`), all
            before the blur (computed for the crop's window and the blur's
            margin only); the pair is then flipped or rotated by a
            multiple of 90 degrees. Never when `training` is False.
            Defaults to False.
        **blur_options: `max_length`, `exposure`, `fraction`, `num_steps`,
            `gamma`, `noise_std`; see `motion_blur.synthesize_blur`. The
            defaults draw exposures and fractions like the reference's
            dataset script. Per pair, in [0, 1], all defaulting to 0:
            `unblurred_ratio`, the share left unblurred, (sharp, sharp),
            which teaches the generator to leave sharp content, natural
            defocus included, as it is; `depth_of_field_ratio`, the share
            whose sharp photo is first given synthetic shallow depth of field
            (`depth_of_field.photo_depth_of_field`), which the target keeps,
            so the generator learns to tell optical defocus from a shake;
            `soft_ratio` and `misfocus_ratio`, the next shares, made a
            little soft all over (`depth_of_field.soft_all_over`) or
            misfocused (`depth_of_field.misfocused_depth_of_field`), the
            three defocus shares adding up to at most 1;
            `noise_ratio`, the share whose
            blurred image gets sensor noise (Poisson-Gaussian, see
            `synthesize_blur(shot_noise=...)`) of standard deviation at
            mid-grey drawn from `noise_levels` (levels of 255, default
            `NOISE_LEVELS` = (1, 4)); `jpeg_ratio`, the share whose blurred
            image is then JPEG-compressed at a quality drawn from
            `jpeg_quality` (default `JPEG_QUALITY` = (60, 95)). Noise and
            JPEG touch the blurred image only, so the generator learns not
            to reproduce them; they also apply when `training` is False.

    Returns:
        Unbatched `tf.data.Dataset` of `(blurred, sharp)`, float32
        `(crop_size, crop_size, 3)` in [-1, 1]; one pass over the photos.

    Raises:
        TypeError, ValueError: see `check_blur_options`.

    Example:

    ```python
    train = mix_datasets(
        synthetic_dataset("photos/", seed=0),
        paired_dataset("GOPRO_Large/train", resize=(360, 640), seed=0),
        seed=0,
    ).batch(1).prefetch(tf.data.AUTOTUNE)
    ```
    """
    _check_crop_size(crop_size)
    check_blur_options(blur_options)
    if not isinstance(augment, bool):
        raise ValueError(f"augment must be True or False. Received: augment={augment!r}")
    source = sharp if isinstance(sharp, str | os.PathLike) else "sharp photos"
    paths = list_images(os.fspath(sharp)) if isinstance(sharp, str | os.PathLike) else list(sharp)
    if not paths:
        raise FileNotFoundError(f"{source}: no image files given")
    usable, _, problems = check_image_files(paths)
    report_skips(os.fspath(source), len(paths), len(problems))
    load = functools.partial(
        _blur_on_the_fly,
        crop_size=crop_size,
        training=training,
        augment=augment,
        blur_options=blur_options,
        photos=PhotoCache(),
    )
    return _stream((usable,), load, crop_size, training, seed)


def procedural_dataset(
    crop_size=256,
    training=True,
    seed=None,
    leaf_options=None,
    pairs_per_canvas=PAIRS_PER_CANVAS,
    **blur_options,
):
    """Procedural dead-leaves images blurred on the fly: an endless stream of pairs.

    Each run of `pairs_per_canvas` elements shares a new
    `dead_leaves.dead_leaves_image`; each element is a window of it of the crop
    plus its own kernel's margin, blurred with the same kernels, noise and
    compression as `synthetic_dataset` (the crop is the window's centre, so
    every blurred pixel sees real content), then flipped or rotated at random.
    Mix it with photos with `mix_procedural`.

    Args:
        crop_size: int. Side of the square crops. Defaults to 256.
        training: bool. True: new images every pass (with random horizontal
            flips). False: the same images on every pass (seeded by `seed`,
            else by `VALIDATION_SEED`). Defaults to True.
        seed: int or None. Makes the stream reproducible.
        leaf_options: dict or None. Keyword arguments of `dead_leaves_image`
            (`rmin`, `rmax`, `alpha`, `coverage`, `shapes`, `texture_ratio`,
            `palette`, `supersample`); `rmax` defaults to the canvas side.
            Defaults to None (its defaults).
        pairs_per_canvas: int >= 1. Consecutive pairs cut from one canvas.
            Defaults to `PAIRS_PER_CANVAS`.
        **blur_options: see `synthetic_dataset`.

    Returns:
        Infinite unbatched `tf.data.Dataset` of `(blurred, sharp)`, float32
        `(crop_size, crop_size, 3)` in [-1, 1]; use `take` or `steps_per_epoch`.

    Raises:
        TypeError, ValueError: see `check_blur_options`; ValueError for a bad
        `crop_size`, leaf option or `pairs_per_canvas`.

    Example:

    ```python
    palette = dead_leaves.photo_palette(list_images("photos/"))
    train = mix_procedural(
        synthetic_dataset("photos/", crop_size=128, seed=0),
        procedural_dataset(128, seed=0, leaf_options={"palette": palette}),
        procedural_ratio=0.5,
        seed=0,
    ).batch(8)
    ```
    """
    if crop_size is None:
        raise ValueError("crop_size must be a positive int for procedural images. Received: None")
    _check_crop_size(crop_size)
    check_blur_options(blur_options)
    leaf_options = dict(leaf_options or {})
    # Bad leaf options fail here in one line, not later inside the tf.data pipeline.
    dead_leaves_image(np.random.default_rng(0), (8, 8), **leaf_options)
    if int(pairs_per_canvas) != pairs_per_canvas or pairs_per_canvas < 1:
        raise ValueError(
            f"pairs_per_canvas must be an int >= 1. Received: pairs_per_canvas={pairs_per_canvas}"
        )
    count = int(pairs_per_canvas)
    make_group = functools.partial(
        _procedural_group,
        crop_size=int(crop_size),
        count=count,
        blur_options=blur_options,
        leaf_options=leaf_options,
    )
    load = functools.partial(
        _procedural_pair,
        crop_size=int(crop_size),
        canvases=_SharedCanvases(make_group),
        blur_options=blur_options,
    )
    decode = _decoder(load, int(crop_size), training)

    def group(seeds):  # the first seed names the canvas; each pair keeps its own
        first = tf.fill([count], seeds[0])
        return tf.data.Dataset.from_tensor_slices((first, tf.range(count, dtype=tf.int64), seeds))

    dataset = (
        _seeds(seed, training)
        .batch(count)
        .flat_map(group)
        .map(
            lambda group_seed, index, element_seed: decode((group_seed, index), element_seed),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    )
    return _keep_good(dataset)


def _mix(first, second, ratio, name, seed):
    _check_range(name, ratio)
    return tf.data.Dataset.sample_from_datasets(
        [first.repeat(), second.repeat()], weights=[ratio, 1.0 - ratio], seed=seed
    )


def mix_datasets(synthetic, real, synthetic_ratio=2 / 3, seed=None):
    """Interleaves synthetic and real pairs at random with a given ratio.

    Both inputs are repeated, so the ratio holds however many elements each
    has, and the result is infinite: set `steps_per_epoch` or use `take`.

    Args:
        synthetic: `tf.data.Dataset` of on-the-fly blurred pairs.
        real: `tf.data.Dataset` of real pairs, with the same element spec.
        synthetic_ratio: float in [0, 1]. Probability that an element is
            synthetic. Defaults to 2/3 (the paper's 2 synthetic : 1 real).
        seed: int or None. Makes the interleaving reproducible.

    Returns:
        Infinite unbatched `tf.data.Dataset`.
    """
    return _mix(synthetic, real, synthetic_ratio, "synthetic_ratio", seed)


def mix_procedural(photos, procedural, procedural_ratio=0.5, seed=None):
    """Interleaves procedural pairs with photo pairs at random with a given ratio.

    Args:
        photos: `tf.data.Dataset` of pairs from photos (e.g. `synthetic_dataset`),
            repeated.
        procedural: `tf.data.Dataset` from `procedural_dataset`, same element spec.
        procedural_ratio: float in [0, 1]. Probability that an element is
            procedural. Defaults to 0.5.
        seed: int or None. Makes the interleaving reproducible.

    Returns:
        Infinite unbatched `tf.data.Dataset`.
    """
    return _mix(procedural, photos, procedural_ratio, "procedural_ratio", seed)


def embedded_dataset(split="train", crop_size=256, training=True, seed=None, **blur_options):
    """Embedded scikit-image photos blurred on the fly: training with no download.

    Args:
        split: str. `"train"`, `"validation"` or `"all"`; see
            `embedded.embedded_photo_paths`. Defaults to `"train"`.
        crop_size, training, seed, **blur_options: see `synthetic_dataset`.

    Returns:
        Unbatched `tf.data.Dataset` of `(blurred, sharp)`, float32 in [-1, 1].
    """
    return synthetic_dataset(embedded_photo_paths(split), crop_size, training, seed, **blur_options)
