"""Freely licensed sharp photos from Debian packages, split and resized for training.

The embedded scikit-image photos are too few to train a model that generalises.
Debian's `lomiri-wallpapers-16.04` and `lomiri-wallpapers-20.04` packages hold
photographs under CC-BY-4.0, CC-BY-SA and CC0 licences (each file's licence is
listed in `PHOTOS` and in the package's copyright file). This module fetches
them with `apt-get download` (no root needed), or reads them from
/usr/share/backgrounds when the packages are installed, and writes:

    OUTPUT/train/*.png   12 photos, each at 1024 and 640 pixels on the long side
                         (with --textures, also 6 grey-level photos from scikit-image)
    OUTPUT/val/*.png     3 held-out photos at 1024 pixels, never trained on
    OUTPUT/LICENSES.md   author and licence of every file

    python -m keras_deblur.data.open_photos --output_dir data/open_photos

Downscaling (area interpolation) makes the photos' own blur and noise
negligible next to the synthetic blur, and makes decoding a crop cheap.
The Debian packages `plasma-workspace-wallpapers` and `mate-backgrounds` are
never used: they are kept for independent evaluation of our models.
"""

import logging
import os
import subprocess
import sys
import tempfile

import cv2

from keras_deblur.data.embedded import embedded_photo_folder
from keras_deblur.data.images import read_image, to_rgb_uint8, write_image

logger = logging.getLogger(__name__)

PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
INSTALLED_FOLDER = "/usr/share/backgrounds"
# file -> (author, licence, split). Abstract art in the packages is left out.
PHOTOS = {
    "Bridge_by_Sander_Klootwijk.jpg": ("Sander Klootwijk", "CC-BY-SA-4.0", "train"),
    "Dragonfly_by_Bolly.jpg": ("Bolly", "CC-BY-SA-4.0", "train"),
    "Picture_1A_by_freespace.jpg": ('Trevor "Freespace"', "CC-BY-4.0", "train"),
    "Wine_by_Jakkub_Mede.jpg": ("Jakub Mede", "CC-BY-4.0", "train"),
    "aitzgorri_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC-BY-4.0", "train"),
    "analogpattern_by_Peter_Nerlich.jpg": ("Peter Nerlich", "CC-BY-SA-4.0", "train"),
    "free_by_Peter_Nerlich.jpg": ("Peter Nerlich", "CC-BY-SA-4.0", "train"),
    "greentock_by_Peter_Nerlich.jpg": ("Peter Nerlich", "CC-BY-SA-4.0", "train"),
    "life_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC-BY-4.0", "train"),
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC-BY-4.0", "train"),
    "seeding_by_Clements_Engelhardt.jpg": ("Clemens Engelhardt", "CC0-1.0", "train"),
    "sunset_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC-BY-4.0", "train"),
    "Picture_0B_by_freespace.jpg": ('Trevor "Freespace"', "CC-BY-4.0", "val"),
    "friends_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC-BY-4.0", "val"),
    "Kleiber_by_Lukas_Baubkus.jpg": ("Lukas Baubkus", "CC-BY-SA-3.0", "val"),
}
LONG_SIDES = {"train": (1024, 640), "val": (1024,)}
# Grey-level photos in scikit-image's wheel (licences from their docstrings),
# trained on as grey RGB: fine texture (brick, grass, gravel), print and edges
# that the colour photos have little of. None is an evaluation photo. Opt-in:
# the shipped model was trained without them, and fine-tuning it with them
# (run mobile_v5, MODEL_CARD.md) lowered its validation PSNR.
TEXTURES = {
    "brick.png": ("CC0Textures, via scikit-image", "CC0-1.0"),
    "grass.png": ("linolafett (DeviantArt), via scikit-image", "CC0-1.0"),
    "gravel.png": ("CC0Textures, via scikit-image", "CC0-1.0"),
    "camera.png": ("Lav Varshney, via scikit-image", "CC0-1.0"),
    "coins.png": ("Brooklyn Museum, via scikit-image", "no known copyright restrictions"),
    "text.png": ("Wikipedia, via scikit-image", "public domain"),
}


def fetch_packages(download_dir):
    """Downloads and unpacks `PACKAGES` into `download_dir`; returns the photo folder."""
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=download_dir, check=True)
    root = os.path.join(download_dir, "root")
    for name in sorted(os.listdir(download_dir)):
        if name.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", os.path.join(download_dir, name), root], check=True)
    return os.path.join(root, INSTALLED_FOLDER.lstrip("/"))


def resize_long_side(image, long_side):
    """Area-downscales so the longer side is `long_side` (never upscales)."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return image
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_split(source_folder, output_dir, textures=False):
    """Writes the resized train/val photos and LICENSES.md; returns the paths written."""
    missing = [name for name in PHOTOS if not os.path.isfile(os.path.join(source_folder, name))]
    if missing:
        raise FileNotFoundError(
            f"{source_folder}: {len(missing)} photos missing, e.g. {missing[0]}"
        )
    written = []
    for name, (_, _, split) in sorted(PHOTOS.items()):
        image = to_rgb_uint8(read_image(os.path.join(source_folder, name)))
        stem = os.path.splitext(name)[0]
        for long_side in LONG_SIDES[split]:
            path = os.path.join(output_dir, split, f"{stem}_{long_side}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_image(path, resize_long_side(image, long_side))
            written.append(path)
    lines = ["| file | author | licence | split |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {a} | {lic} | {s} |" for n, (a, lic, s) in sorted(PHOTOS.items())]
    if textures:
        written += write_textures(os.path.join(output_dir, "train"))
        lines += [f"| {n} | {a} | {lic} | train |" for n, (a, lic) in sorted(TEXTURES.items())]
    with open(os.path.join(output_dir, "LICENSES.md"), "w", encoding="utf-8") as file:
        file.write(
            f"Photos from the Debian packages {', '.join(PACKAGES)}, area-downscaled to "
            "1024 and 640 pixels on the long side"
            + (", and grey-level photos from scikit-image at their own size" if textures else "")
            + ".\n\n"
            + "\n".join(lines)
            + "\n"
        )
    return written


def write_textures(train_dir):
    """Copies `TEXTURES` from the installed scikit-image as grey RGB PNGs; returns the paths."""
    folder = embedded_photo_folder()
    written = []
    for name in sorted(TEXTURES):
        path = os.path.join(train_dir, f"texture_{name}")
        write_image(path, to_rgb_uint8(read_image(os.path.join(folder, name))))
        written.append(path)
    return written


def prepare_open_photos(output_dir, source_folder=None, textures=False):
    """Fetches (unless `source_folder` or the installed packages have them) and writes the split.

    Returns:
        list of str: the image files written under `output_dir/train` and `output_dir/val`.
    """
    if source_folder is None and all(
        os.path.isfile(os.path.join(INSTALLED_FOLDER, name)) for name in PHOTOS
    ):
        source_folder = INSTALLED_FOLDER
    if source_folder is not None:
        return write_split(source_folder, output_dir, textures)
    with tempfile.TemporaryDirectory() as download_dir:
        return write_split(fetch_packages(download_dir), output_dir, textures)


def main(argv):
    from absl import flags

    del argv
    output_dir = flags.FLAGS.output_dir
    try:
        written = prepare_open_photos(output_dir, flags.FLAGS.source_folder, flags.FLAGS.textures)
    except (OSError, subprocess.CalledProcessError) as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)
    print(f"Wrote {len(written)} images and LICENSES.md under {output_dir}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("output_dir", "data/open_photos", "Folder for train/, val/, LICENSES.md.")
    flags.DEFINE_string(
        "source_folder", None, "Folder already holding the packages' photos (default: fetch)."
    )
    flags.DEFINE_boolean(
        "textures", False, "Also write 6 grey-level texture photos from scikit-image."
    )
    app.run(main)
