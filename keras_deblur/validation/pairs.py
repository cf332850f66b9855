"""Turning a validation manifest into (blurred, sharp) image pairs, checked and cached.

Photos are found by base name among the given sources and must match the
manifest's SHA-256, or nothing is built. Blur is `synthesize_blur` (the kernel
centred on the sharp image, rounded to uint8) applied to the crop plus a margin
of the kernel's radius, so a crop has the pixels that blurring the whole photo
would give it; the photo's own border is reflected, as for a whole photo.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from keras_deblur.data.embedded import EMBEDDED, photo_paths
from keras_deblur.data.images import read_image, to_rgb_uint8, write_image
from keras_deblur.data.motion_blur import blur_window
from keras_deblur.validation.manifest import file_sha256

# Where the held-out photos live by default: the open photos' val split
# (`python -m keras_deblur.data.open_photos`) and the embedded validation photos.
DEFAULT_PHOTO_SOURCES = ("data/open_photos/val", EMBEDDED)


@dataclasses.dataclass
class ValidationPairs:
    """Validation images, one entry per manifest sample.

    Attributes:
        samples: list of dict. The manifest's sample entries, in order.
        blurred: list of uint8 arrays `(h, w, 3)`. Model inputs.
        sharp: list of uint8 arrays `(h, w, 3)`. Targets, same shapes.
        reference: dict or None. Model-independent scores filled in by
            `keras_deblur.validation.scoring` on first use (blurred and
            unsharp-masking PSNR/SSIM), so each epoch only scores the model.
    """

    samples: list
    blurred: list
    sharp: list
    reference: dict | None = None

    def select(self, whole):
        """The crops (`whole=False`) or the whole photos (`whole=True`), as new pairs."""
        keep = [i for i, sample in enumerate(self.samples) if sample["whole"] == whole]
        return ValidationPairs(
            [self.samples[i] for i in keep],
            [self.blurred[i] for i in keep],
            [self.sharp[i] for i in keep],
        )

    def __len__(self):
        return len(self.samples)


def find_photos(manifest, sources=DEFAULT_PHOTO_SOURCES):
    """Paths of the manifest's photos, found by base name and checked by SHA-256.

    Args:
        manifest: dict from `build_validation_manifest` or `load_manifest`.
        sources: list of str. Folders, files, globs or "embedded" (the
            embedded validation photos). Defaults to `DEFAULT_PHOTO_SOURCES`.

    Returns:
        dict: photo name -> path.

    Raises:
        FileNotFoundError: a photo is in none of the sources (one line naming it).
        ValueError: a photo's checksum differs (one line naming the file).
    """
    available = {}
    for source in sources:
        try:
            paths = photo_paths([source], "validation")
        except FileNotFoundError:
            continue
        for path in paths:
            available.setdefault(os.path.basename(path), path)
    found = {}
    for photo in manifest["photos"]:
        path = available.get(photo["name"])
        if path is None:
            raise FileNotFoundError(
                f"{photo['name']}: validation photo not found in {', '.join(map(str, sources))}"
            )
        if file_sha256(path) != photo["sha256"]:
            raise ValueError(
                f"{path}: SHA-256 differs from the validation manifest's; this is not the photo "
                "the set was built from (rebuild the manifest if the photo changed on purpose)"
            )
        found[photo["name"]] = path
    return found


def window_pair(photo, window, kernel):
    """The (blurred, sharp) pair of one window of a photo, blurred as the whole photo would be.

    Args:
        photo: uint8 array `(H, W, 3)`. The sharp photo.
        window: `[top, left, height, width]` inside the photo.
        kernel: float array `(k, k)` summing to 1, or None (no blur).

    Returns:
        `(blurred, sharp)`: uint8 arrays `(height, width, 3)`.
    """
    if kernel is None:
        top, left, height, width = window
        sharp = photo[top : top + height, left : left + width]
        return sharp.copy(), sharp.copy()
    # The kernel is given, so the generator draws nothing (no noise either).
    blurred, sharp = blur_window(photo, window, np.random.default_rng(0), kernel)
    return blurred, sharp.copy()


def load_pairs(manifest, sources=DEFAULT_PHOTO_SOURCES, whole=None):
    """Builds every pair of a manifest in memory.

    Args:
        manifest: dict from `load_manifest` or `build_validation_manifest`.
        sources: list of str. Where to find the photos (see `find_photos`).
        whole: bool or None. Only the crops (False), only the whole photos
            (True), or all (None). Defaults to None.

    Returns:
        `ValidationPairs`.
    """
    paths = find_photos(manifest, sources)
    photos = {name: to_rgb_uint8(read_image(path)) for name, path in paths.items()}
    pairs = ValidationPairs([], [], [])
    for sample in manifest["samples"]:
        if whole is not None and sample["whole"] != whole:
            continue
        kernel = manifest["kernels"][sample["kernel"]] if sample["kernel"] else None
        blurred, sharp = window_pair(photos[sample["photo"]], sample["window"], kernel)
        pairs.samples.append(sample)
        pairs.blurred.append(blurred)
        pairs.sharp.append(sharp)
    return pairs


def manifest_digest(manifest):
    """SHA-256 over a manifest's description and kernels: what a cache must match."""
    digest = hashlib.sha256()
    description = {key: value for key, value in manifest.items() if key != "kernels"}
    digest.update(json.dumps(description, sort_keys=True).encode())
    for key in sorted(manifest["kernels"]):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(manifest["kernels"][key], np.float32).tobytes())
    return digest.hexdigest()


def materialise(manifest, output_dir, sources=DEFAULT_PHOTO_SOURCES, whole=None):
    """Builds the pairs once as PNG files under `output_dir`, then reads them back.

    `output_dir/<id>_blurred.png` and `<id>_sharp.png`, plus `manifest.sha256`
    naming the manifest they were made from: a cache made from another manifest
    (or a partial one) is rebuilt. The photos' checksums are checked either way.

    Args:
        manifest: dict. See `load_pairs`.
        output_dir: str. Cache folder, e.g. "data/validation".
        sources, whole: see `load_pairs`.

    Returns:
        `ValidationPairs`.
    """
    find_photos(manifest, sources)  # refuses changed photos even when cached
    stamp = os.path.join(output_dir, "manifest.sha256")
    digest = manifest_digest(manifest)
    cached = os.path.exists(stamp) and open(stamp).read().strip() == digest
    if not cached:
        if os.path.exists(stamp):
            os.remove(stamp)  # a kill while rewriting must not leave a valid-looking cache
        pairs = load_pairs(manifest, sources)
        for sample, blurred, sharp in zip(pairs.samples, pairs.blurred, pairs.sharp, strict=True):
            write_image(os.path.join(output_dir, f"{sample['id']}_blurred.png"), blurred)
            write_image(os.path.join(output_dir, f"{sample['id']}_sharp.png"), sharp)
        os.makedirs(output_dir, exist_ok=True)
        with open(stamp, "w") as file:
            file.write(digest + "\n")
        return pairs if whole is None else pairs.select(whole)
    pairs = ValidationPairs([], [], [])
    for sample in manifest["samples"]:
        if whole is not None and sample["whole"] != whole:
            continue
        pairs.samples.append(sample)
        for kind, images in (("blurred", pairs.blurred), ("sharp", pairs.sharp)):
            images.append(
                to_rgb_uint8(read_image(os.path.join(output_dir, f"{sample['id']}_{kind}.png")))
            )
    return pairs
