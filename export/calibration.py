"""Images for int8 calibration and for validating an exported model.

Full-integer quantization fixes each activation's int8 range from the ranges
seen while running the float model on representative inputs, so those inputs
must look like what the phone will see: blurred photos. By default they are
the embedded photos (`keras_deblur.data.embedded`) blurred by the same
random-trajectory motion blur the generator is trained with; a folder of the
user's own blurred photos can replace them.
"""

import numpy as np

from keras_deblur.data.images import list_images, read_image, to_rgb_uint8
from keras_deblur.inference import to_model_range


def _centre_crop(image, size):
    """Centre crop to `size`, reflect-padding sides that are too short."""
    height, width = size
    pad_h, pad_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def folder_images(folder, size, count=None):
    """Centre crops of the images in a folder (or file, or glob).

    Args:
        folder: str. Directory, file or glob of images (`list_images`).
        size: `(height, width)` of the crops.
        count: int or None. Use at most this many images (sorted order).

    Returns:
        list of float32 `(height, width, 3)` arrays in [-1, 1].
    """
    paths = list_images(folder)[:count]
    return [to_model_range(_centre_crop(to_rgb_uint8(read_image(p)), size)) for p in paths]


def embedded_pairs(split, size, count, seed=0, **blur_options):
    """Synthetically blurred crops of the embedded photos, with their sharp crops.

    Random crops, flips and blur kernels drawn from `seed` (the photos are
    few, so each is visited several times), hence reproducible.

    Args:
        split: `"train"` or `"validation"` (`keras_deblur.data.embedded`).
        size: `(height, width)`, square.
        count: int. Number of pairs.
        seed: int. Seed of crops and kernels.
        **blur_options: passed to `keras_deblur.data.datasets.embedded_dataset`
            (e.g. `max_length`, for small crops).

    Returns:
        `(blurred, sharp)`: two lists of float32 `(height, width, 3)` arrays
        in [-1, 1].
    """
    from keras_deblur.data.datasets import embedded_dataset

    if size[0] != size[1]:
        raise ValueError(f"embedded crops are square. Received: size={size}")
    dataset = embedded_dataset(split, crop_size=size[0], training=True, seed=seed, **blur_options)
    blurred, sharp = [], []
    for pair_blurred, pair_sharp in dataset.repeat().take(count).as_numpy_iterator():
        blurred.append(np.asarray(pair_blurred, np.float32))
        sharp.append(np.asarray(pair_sharp, np.float32))
    return blurred, sharp


def calibration_images(size, count=16, folder=None, seed=0, **blur_options):
    """Blurred float images for int8 calibration.

    Args:
        size: `(height, width)`; multiples of 4.
        count: int. Number of images. Defaults to 16.
        folder: str or None. The user's own blurred photos; None uses the
            embedded photos with synthetic motion blur (training split, so
            calibration never sees the validation images).
        seed: int. Blur seed for the embedded photos.
        **blur_options: see `embedded_pairs`.

    Returns:
        list of float32 `(height, width, 3)` arrays in [-1, 1].
    """
    if folder is not None:
        return folder_images(folder, size, count)
    return embedded_pairs("train", size, count, seed, **blur_options)[0]


def representative_dataset(images):
    """Wraps images as the callable `TFLiteConverter.representative_dataset` wants.

    int8 calibration takes each tensor's range from what it sees, and values
    outside it are clipped at run time. Photos without pure black and white
    would give the input (and, through the global skip, the output) a range
    narrower than [-1, 1], clipping bright and dark pixels of later photos
    and skewing the scale of uint8/int8 input/output tensors. So the first
    image gets one black (-1) and one white (+1) pixel, which pins those
    ranges to [-1, 1] (scale 2/255).
    """

    def generate():
        for index, image in enumerate(images):
            image = np.array(image, np.float32)
            if index == 0:
                image[0, 0], image[0, -1] = -1.0, 1.0
            yield [image[None]]

    return generate
