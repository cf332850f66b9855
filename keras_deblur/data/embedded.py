"""Sharp colour photographs shipped inside scikit-image: a dataset that needs no download.

scikit-image's wheel carries a few test photographs in `skimage/data/`. The ones
below are real, sharp colour photos (the folder also holds synthetic images,
microscopy, a retina scan and `clock_motion.png`, which is already motion
blurred). They are found through the installed package's path, never fetched.
"""

import os

# Names the embedded photos wherever a list of photo folders is taken
# (`--sharp_dirs`, `--val_sharp_dirs`, `evaluate --sharp_dir`).
EMBEDDED = "embedded"
# A fixed split. The two views of the motorcycle stereo pair stay together in
# training so the validation photos are scenes the model never saw.
TRAIN_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
)
VALIDATION_PHOTOS = ("chelsea.png", "rocket.jpg")

_SPLITS = {
    "train": TRAIN_PHOTOS,
    "validation": VALIDATION_PHOTOS,
    "all": TRAIN_PHOTOS + VALIDATION_PHOTOS,
}


def embedded_photo_folder():
    """Path of the installed `skimage/data` folder.

    Raises:
        FileNotFoundError: if scikit-image is not installed.
    """
    try:
        import skimage
    except ImportError as error:
        raise FileNotFoundError(
            "The embedded photos ship with scikit-image, which is not installed "
            "(pip install scikit-image)."
        ) from error
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def embedded_photo_paths(split="train"):
    """Paths of the embedded sharp colour photos.

    Args:
        split: str. `"train"` (5 photos), `"validation"` (2 held-out photos)
            or `"all"`. Defaults to `"train"`.

    Returns:
        list of str, in a fixed order.

    Raises:
        ValueError: for an unknown split.
        FileNotFoundError: if the installed scikit-image lacks a photo.

    Example:

    >>> [os.path.basename(p) for p in embedded_photo_paths("validation")]
    ['chelsea.png', 'rocket.jpg']
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}. Received: split={split!r}")
    folder = embedded_photo_folder()
    paths = [os.path.join(folder, name) for name in _SPLITS[split]]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: embedded photo missing from the installed scikit-image "
            f"({len(missing)} of {len(paths)} missing)"
        )
    return paths


def photo_paths(sources, split="train"):
    """Image files named by `sources`, in order.

    Args:
        sources: list of str. Files (kept as given), folders (searched
            recursively), globs, or `EMBEDDED` for the embedded photos of `split`.
        split: str. Split of the embedded photos. Defaults to `"train"`.

    Returns:
        list of str.

    Raises:
        FileNotFoundError: a source that matches no image file.
    """
    from keras_deblur.data.images import list_images

    paths = []
    for source in map(os.fspath, sources):
        paths += embedded_photo_paths(split) if source == EMBEDDED else list_images(source)
    return paths
