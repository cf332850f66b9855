"""Freely licensed sharp photos from Debian packages, in train, val and release splits.

The embedded scikit-image photos are too few to train a model that generalises.
These Debian packages hold photographs under free licences (each file's author,
licence and package are in `PHOTOS`, from the package's copyright or credits file):
`lomiri-wallpapers-16.04` and `-20.04` (CC-BY-4.0, CC-BY-SA, CC0), `lxqt-themes`
(CC-BY-SA-3.0), `tuxpaint-data` (GPL-2+), `libjxl-testdata` (BSD-3-Clause),
`palapeli-data` (public domain, GFDL), `puzzle-jigsaw` (CC0-1.0),
`scribus-template` (public domain), `enlightenment-data` and `libelementary-data`
(BSD-2-Clause), `sddm-theme-maldives` (CC-BY-3.0), `digikam-data` (GPL-2+),
`qtdeclarative5-examples` and `qtmultimedia5-examples` (BSD-3-Clause).
This module fetches them with `apt-get download` (no root needed), or reads
them where they are installed, and writes:

    OUTPUT/train/*.png    41 photos, each at 1024 and 640 pixels on the long side
                          (with --textures, also 6 grey-level photos from
                          scikit-image)
    OUTPUT/val/*.png      19 held-out photos at 1024 pixels, never trained on:
                          the selection split, scored to choose among models
    OUTPUT/release/*.png  19 held-out photos at 1024 pixels, never trained on
                          and never chosen on: scored once per shipped model
    OUTPUT/LICENSES.md    package, author, licence and split of every file

Photos are never upscaled: one smaller than a side is written once at its own
size (a 640x640 photo at 640 in every split, a 1000x665 held-out photo at 1000).

`DEFOCUS` names the held-out photos with natural shallow depth of field (8 in
val, 6 in release). The release split was assigned by content before any model
was scored on it; a model chosen by its release score makes the split one more
selection split, so score it only on a model already chosen.

    python -m keras_deblur.data.open_photos --output_dir data/open_photos
    # the shipped model's 12 + 3 photos only:
    python -m keras_deblur.data.open_photos --output_dir data/open_photos \
        --packages=lomiri-wallpapers-16.04,lomiri-wallpapers-20.04

Downscaling (area interpolation) makes the photos' own blur and noise
negligible next to the synthetic blur, and makes decoding a crop cheap.
The Debian packages in `RESERVED_PACKAGES` (`plasma-workspace-wallpapers` and
`mate-backgrounds`) are never used: they are kept for independent evaluation.
"""

import glob
import itertools
import logging
import os
import re
import subprocess
import tempfile
from typing import NamedTuple

import cv2
import numpy as np

from keras_deblur.cli import reports_errors
from keras_deblur.data.embedded import embedded_photo_folder
from keras_deblur.data.images import read_image, to_rgb_uint8, write_image

logger = logging.getLogger(__name__)


class Photo(NamedTuple):
    """Where one photo comes from, who made it, its licence and its split.

    `subfolder` is the photo's folder under its package's `PACKAGE_FOLDERS`
    entry, for packages that keep photos in several folders.
    """

    package: str
    author: str
    licence: str
    split: str
    subfolder: str = ""


LOMIRI_16 = "lomiri-wallpapers-16.04"
LOMIRI_20 = "lomiri-wallpapers-20.04"
LXQT = "lxqt-themes"
TUXPAINT = "tuxpaint-data"
JXL = "libjxl-testdata"
PALAPELI = "palapeli-data"
JIGSAW = "puzzle-jigsaw"
SCRIBUS = "scribus-template"
ENLIGHTENMENT = "enlightenment-data"
ELEMENTARY = "libelementary-data"
MALDIVES = "sddm-theme-maldives"
DIGIKAM = "digikam-data"
QT_QUICK = "qtdeclarative5-examples"
QT_MULTIMEDIA = "qtmultimedia5-examples"
# Folder of each package's photos, relative to the root it is unpacked (or installed) in.
PACKAGE_FOLDERS = {
    LOMIRI_16: "usr/share/backgrounds",
    LOMIRI_20: "usr/share/backgrounds",
    LXQT: "usr/share/lxqt/wallpapers",
    TUXPAINT: "usr/share/tuxpaint/templates",
    JXL: "usr/share/libjxl-testdata/jxl/flower",
    PALAPELI: "usr/share/palapeli/collection",
    JIGSAW: "usr/share/puzzle-jigsaw/samples",
    SCRIBUS: "usr/share/scribus/templates",
    ENLIGHTENMENT: "usr/share/enlightenment/data/backgrounds",
    ELEMENTARY: "usr/share/elementary/images",
    MALDIVES: "usr/share/sddm/themes/maldives",
    DIGIKAM: "usr/share/digikam/about/images",
    # Architecture-dependent packages: `*` is the multiarch triplet (`photo_path`).
    QT_QUICK: "usr/lib/*/qt5/examples/quick/customitems/scrollbar/pics",
    QT_MULTIMEDIA: "usr/lib/*/qt5/examples/multimedia/video/qmlvideo/images",
}
PACKAGES = tuple(PACKAGE_FOLDERS)
# Kept for independent evaluation of our models: never fetched, read or listed here.
RESERVED_PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds")
# The packages of the photos the shipped model was trained and validated on.
SHIPPED_PACKAGES = (LOMIRI_16, LOMIRI_20)
# file -> Photo. Only photographs: abstract art, renders, illustrations, photos
# whose package states no free licence for them (by name, or in a "Files: *"
# stanza), and letterboxed or < 640-pixel photos are left out.
# The first 15 are the shipped model's split and must keep it, and so must every
# train and val entry (the shipped model was trained and chosen on them); about a
# third of the lxqt, tuxpaint and jxl photos are held out in val, chosen for
# natural defocus (`DEFOCUS`) and varied content. The release photos were added
# after the shipped model, all held out, assigned by content before any model
# was scored on them. Checked and left out: ukui-wallpapers, gnome-backgrounds,
# sway-backgrounds, desktop-base, debian-edu-artwork-*, xfdesktop4-data,
# lxde-common, fluxbox, blackbox-themes, pekwm-themes, lomiri-wallpapers (renders
# or logos); mypaint-data-extras (paper textures); kphotoalbum's demo (< 640 px),
# tuxtype-data and gimp-data's splash (no licence stated for them); libjxl's
# hdr_room (HLG, not sRGB); opencv-doc (research data sets' photos);
# libelementary-data's wood_01 and panel_01 (flat textures) and
# insanely_huge_test_image (soft, source unknown); tuxmath-data's menu_bkg
# (heavy JPEG compression); python3-skimage's retina (a fundus image) and
# python3-scipy's face were not taken.
ENLIGHTENMENT_AUTHORS = "Carsten Haitzler and the Enlightenment contributors"
# The packages' copyright holders, for photos whose photographer is not named.
ELEMENTARY_AUTHORS = "the Enlightenment Developers"
DIGIKAM_AUTHORS = "Gilles Caulier and the digiKam authors"
QT_AUTHORS = "The Qt Company Ltd."
PHOTOS = {
    "Bridge_by_Sander_Klootwijk.jpg": Photo(LOMIRI_16, "Sander Klootwijk", "CC-BY-SA-4.0", "train"),
    "Dragonfly_by_Bolly.jpg": Photo(LOMIRI_16, "Bolly", "CC-BY-SA-4.0", "train"),
    "Picture_1A_by_freespace.jpg": Photo(LOMIRI_16, 'Trevor "Freespace"', "CC-BY-4.0", "train"),
    "Wine_by_Jakkub_Mede.jpg": Photo(LOMIRI_16, "Jakub Mede", "CC-BY-4.0", "train"),
    "aitzgorri_by_Aitzol_Berasategi.jpg": Photo(
        LOMIRI_16, "Aitzol Berasategi", "CC-BY-4.0", "train"
    ),
    "analogpattern_by_Peter_Nerlich.jpg": Photo(
        LOMIRI_16, "Peter Nerlich", "CC-BY-SA-4.0", "train"
    ),
    "free_by_Peter_Nerlich.jpg": Photo(LOMIRI_16, "Peter Nerlich", "CC-BY-SA-4.0", "train"),
    "greentock_by_Peter_Nerlich.jpg": Photo(LOMIRI_16, "Peter Nerlich", "CC-BY-SA-4.0", "train"),
    "life_by_Aitzol_Berasategi.jpg": Photo(LOMIRI_16, "Aitzol Berasategi", "CC-BY-4.0", "train"),
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": Photo(
        LOMIRI_16, "Aitzol Berasategi", "CC-BY-4.0", "train"
    ),
    "seeding_by_Clements_Engelhardt.jpg": Photo(
        LOMIRI_16, "Clemens Engelhardt", "CC0-1.0", "train"
    ),
    "sunset_by_Aitzol_Berasategi.jpg": Photo(LOMIRI_16, "Aitzol Berasategi", "CC-BY-4.0", "train"),
    "Picture_0B_by_freespace.jpg": Photo(LOMIRI_16, 'Trevor "Freespace"', "CC-BY-4.0", "val"),
    "friends_by_Aitzol_Berasategi.jpg": Photo(LOMIRI_16, "Aitzol Berasategi", "CC-BY-4.0", "val"),
    "Kleiber_by_Lukas_Baubkus.jpg": Photo(LOMIRI_20, "Lukas Baubkus", "CC-BY-SA-3.0", "val"),
    # lxqt-themes: credited to stefonarch in the folder's License file.
    "after-the-rain.jpg": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "train"),
    "beam.png": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "train"),
    "flowers.png": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "train"),
    "fog.jpg": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "train"),
    "appleflower.png": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "val"),
    "butterfly.png": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "val"),
    "drop.png": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "val"),
    "this-is-not-windows.jpg": Photo(LXQT, "stefonarch (Standreas)", "CC-BY-SA-3.0", "val"),
    # tuxpaint-data: the templates, credited to Bill Kendrick in its AUTHORS.txt.
    "burnt_bark.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "cliff.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "corn_maze.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "jellyfish.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "mossy_log.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "mudstone.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "ocean_splash.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "ocean_waves.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "redwoods_above.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "rocks.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "sheep.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "sun_behind_clouds.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "train"),
    "lighthouse.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "val"),
    "spiders_web.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "val"),
    "sun_behind_leaves.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "val"),
    "wool_mill_machine.jpg": Photo(TUXPAINT, "Bill Kendrick", "GPL-2+", "val"),
    "flower.png": Photo(JXL, "the JPEG XL Project Authors", "BSD-3-Clause", "train"),
    # palapeli-data: author and licence of each from its .desktop file.
    "castle-maintenon.jpg": Photo(PALAPELI, "Eric Pouhier", "GFDL", "release"),
    "cincinnati-bridge.jpg": Photo(PALAPELI, "Derek Jensen", "public domain", "release"),
    "citrus-fruits.jpg": Photo(
        PALAPELI, "US Department of Agriculture", "public domain", "release"
    ),
    "european-honey-bee.jpg": Photo(PALAPELI, "John Severns", "public domain", "release"),
    "panther-chameleon-female.jpg": Photo(PALAPELI, "B. Navez and others", "GFDL", "release"),
    # puzzle-jigsaw: CC0 from Pexels, each photo's page in the copyright file.
    "cat-animal-cat-portrait-mackerel.jpg": Photo(
        JIGSAW, "Pexels (pexels.com/photo/33537)", "CC0-1.0", "release"
    ),
    "pexels-photo-302304.jpeg": Photo(
        JIGSAW, "Pexels (pexels.com/photo/302304)", "CC0-1.0", "release"
    ),
    # lxqt-themes: author in the file name, licence from the folder's License file.
    "Butterfly-Kenneth-Wimer.jpg": Photo(LXQT, "Kenneth Wimer", "CC-BY-SA-3.0", "release"),
    # scribus-template: the br2, cal2 and menu2 templates' photos, placed in the
    # public domain by Riku Leino (copyright file and each template.xml).
    "moon.jpg": Photo(SCRIBUS, "Riku Leino", "public domain", "release", "cal2"),
    "nature.jpg": Photo(SCRIBUS, "Riku Leino", "public domain", "release", "br2"),
    "pizza.jpg": Photo(SCRIBUS, "Riku Leino", "public domain", "release", "menu2"),
    "sunset.jpg": Photo(SCRIBUS, "Riku Leino", "public domain", "release", "br2"),
    # enlightenment-data (added 2026-12-03, after the model shipped that evening):
    # the desktop's photographic backgrounds, 3840x2160 JPEGs inside .edj theme
    # files, under the package's BSD-2-clause ("Files: *", no per-file author; the
    # abstract ones are left out). Half have shallow depth of field; split by content.
    **{
        f"{stem}.edj": Photo(ENLIGHTENMENT, ENLIGHTENMENT_AUTHORS, "BSD-2-Clause", split)
        for stem, split in (
            ("Bamboo", "train"),
            ("Red-Maple", "train"),
            ("White-Flower", "train"),
            ("Mountain", "train"),
            ("Snow-Trees", "train"),
            ("Foggy-Trees", "train"),
            ("Peaks", "train"),
            ("Lichen-Branches", "val"),
            ("Yellow-Flower", "val"),
            ("Sunset-Clouds", "val"),
            ("God-Rays", "val"),
            ("Spruce-Needles", "release"),
            ("Green-Maple", "release"),
            ("Sea-of-Lanterns", "release"),
        )
    },
    # libelementary-data (added 2026-12-03, after stage 32): EFL's test photos,
    # 640x640 (mystrale_2 1000x665), under the package's BSD-2-clause ("Files: *",
    # no per-file author); split by content before any model saw them.
    **{
        name: Photo(ELEMENTARY, ELEMENTARY_AUTHORS, "BSD-2-Clause", split)
        for name, split in (
            ("sky_01.jpg", "train"),
            ("sky_04.jpg", "train"),
            ("rock_01.jpg", "train"),
            ("rock_02.jpg", "train"),
            ("plant_01.jpg", "train"),
            ("mystrale_2.jpg", "val"),
            ("sky_02.jpg", "val"),
            ("twofish.jpg", "release"),
            ("sky_03.jpg", "release"),
        )
    },
    # sddm-theme-maldives: the one file the copyright file credits by name.
    "background.jpg": Photo(MALDIVES, "Nevit Dilmen", "CC-BY-3.0", "release"),
    # digikam-data: a lake (iPhone 7, 2021) under the package's "almost all software
    # is GPL" (version 2 or later); this file is not among the exceptions.
    "body-background.jpg": Photo(DIGIKAM, DIGIKAM_AUTHORS, "GPL-2+", "val"),
    # The Qt 5 examples' photos, under their "Files: examples/*" BSD-3-clause
    # (no photographer named).
    "niagara_falls.jpg": Photo(QT_QUICK, QT_AUTHORS, "BSD-3-Clause", "release"),
    "leaves.jpg": Photo(QT_MULTIMEDIA, QT_AUTHORS, "BSD-3-Clause", "val"),
}
# Held-out photos (val or release) whose background or foreground is strongly,
# naturally out of focus (shallow depth of field): the "defocus" class.
DEFOCUS = (
    "Kleiber_by_Lukas_Baubkus.jpg",
    "appleflower.png",
    "butterfly.png",
    "drop.png",
    "spiders_web.jpg",
    "sun_behind_leaves.jpg",
    "Butterfly-Kenneth-Wimer.jpg",
    "european-honey-bee.jpg",
    "moon.jpg",
    "panther-chameleon-female.jpg",
    "Lichen-Branches.edj",
    "Yellow-Flower.edj",
    "Spruce-Needles.edj",
    "Green-Maple.edj",
)
# Long sides written per split, and what each split is for.
LONG_SIDES = {"train": (1024, 640), "val": (1024,), "release": (1024,)}
SPLIT_ROLES = {
    "train": "trained on",
    "val": "held out, scored to choose among models",
    "release": "held out and never chosen on, scored once per shipped model",
}
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


def fetch_packages(download_dir, packages=PACKAGES):
    """Downloads and unpacks `packages` into `download_dir`; returns the root they are under."""
    subprocess.run(["apt-get", "download", *packages], cwd=download_dir, check=True)
    root = os.path.join(download_dir, "root")
    for name in sorted(os.listdir(download_dir)):
        if name.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", os.path.join(download_dir, name), root], check=True)
    return root


def selected_photos(packages=PACKAGES):
    """The `PHOTOS` entries from `packages`, sorted by file name."""
    unknown = sorted(set(packages) - set(PACKAGES))
    if unknown:
        raise ValueError(f"Unknown photo package {unknown[0]}. Received: packages={packages}")
    return {name: photo for name, photo in sorted(PHOTOS.items()) if photo.package in packages}


def photo_path(source_folder, name):
    """Path of photo `name` under `source_folder`, or None.

    `source_folder` is either a root the packages are installed or unpacked in
    (`/`, or what `fetch_packages` returns), or one folder holding the files.
    A `*` in a `PACKAGE_FOLDERS` entry matches any one folder (the multiarch
    triplet of architecture-dependent packages, `x86_64-linux-gnu` or
    `aarch64-linux-gnu`).
    """
    photo = PHOTOS[name]
    pattern = os.path.join(
        glob.escape(source_folder),
        PACKAGE_FOLDERS[photo.package],
        glob.escape(photo.subfolder),
        glob.escape(name),
    )
    candidates = (*sorted(glob.glob(pattern)), os.path.join(source_folder, name))
    return next((path for path in candidates if os.path.isfile(path)), None)


def largest_embedded_jpeg(data):
    """The JPEG stream with the most pixels among those embedded in `data`, as its bytes.

    Enlightenment's `.edj` theme files (Eet archives) keep each background as
    plain JPEG streams at several sizes; each stream runs from its start-of-image
    marker to the next one (they hold no thumbnails of their own).

    Raises:
        ValueError: where no embedded JPEG decodes.
    """
    starts = [match.start() for match in re.finditer(rb"\xff\xd8\xff", data)]
    best, best_pixels = None, 0
    for start, end in itertools.pairwise([*starts, len(data)]):
        stream = data[start:end]
        # An eighth of the size decodes fast and gives the full size's proportions.
        small = cv2.imdecode(np.frombuffer(stream, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if small is not None and small.size > best_pixels:
            best, best_pixels = stream, small.size
    if best is None:
        raise ValueError("no embedded JPEG image")
    return best


def read_photo(path):
    """A photo file as RGB uint8; from an `.edj` theme file, its largest embedded JPEG."""
    if not path.endswith(".edj"):
        return to_rgb_uint8(read_image(path))
    with open(path, "rb") as file:
        try:
            stream = largest_embedded_jpeg(file.read())
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    with tempfile.TemporaryDirectory() as folder:
        jpeg = os.path.join(folder, os.path.basename(path)[: -len(".edj")] + ".jpg")
        with open(jpeg, "wb") as file:
            file.write(stream)
        return to_rgb_uint8(read_image(jpeg))


def resize_long_side(image, long_side):
    """Area-downscales so the longer side is `long_side` (never upscales)."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return image
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_split(source_folder, output_dir, textures=False, packages=PACKAGES):
    """Writes the resized photos of each split and LICENSES.md; returns the image paths written.

    Each photo is area-downscaled to each of `LONG_SIDES[split]` and written to
    `output_dir/SPLIT/STEM_SIDE.png`, named after the long side it has. A photo is
    never upscaled: where a side is above its own long side it is written at its
    own size, once. So a 640x640 photo is `STEM_640.png` alone in any split, a
    held-out 1000x665 photo `STEM_1000.png`, and an 800-pixel train photo is
    written at 800 and 640.
    """
    photos = selected_photos(packages)
    paths = {name: photo_path(source_folder, name) for name in photos}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"{source_folder}: {len(missing)} photos missing, e.g. {missing[0]}"
        )
    written = []
    for name, photo in photos.items():
        image = read_photo(paths[name])
        stem = os.path.splitext(name)[0]
        for long_side in LONG_SIDES[photo.split]:
            resized = resize_long_side(image, long_side)
            path = os.path.join(output_dir, photo.split, f"{stem}_{max(resized.shape[:2])}.png")
            if path in written:
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_image(path, resized)
            written.append(path)
    if textures:
        written += write_textures(os.path.join(output_dir, "train"))
    write_licences(output_dir, photos, textures)
    return written


def write_licences(output_dir, photos, textures=False):
    """Writes `output_dir/LICENSES.md`: what each split is for, and each file's source and licence.

    Args:
        output_dir: str. Folder the splits were written under.
        photos: dict of str to Photo. The photos written (`selected_photos`).
        textures: bool. Whether `TEXTURES` were written to train/. Defaults to False.
    """
    lines = ["| file | package | author | licence | split |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {n} | {p.package} | {p.author} | {p.licence} | {p.split} |" for n, p in photos.items()
    ]
    if textures:
        lines += [
            f"| {n} | scikit-image (PyPI) | {a} | {lic} | train |"
            for n, (a, lic) in sorted(TEXTURES.items())
        ]
    used = sorted({photo.package for photo in photos.values()})
    splits = [
        f"{split}/ at {' and '.join(map(str, sides))} pixels ({SPLIT_ROLES[split]})"
        for split, sides in LONG_SIDES.items()
        if any(photo.split == split for photo in photos.values())
    ]
    sentences = [
        f"Photos from the Debian packages {', '.join(used)}, area-downscaled to their split's "
        f"long sides, or at their own size where smaller (never upscaled): {'; '.join(splits)}"
    ]
    if textures:
        sentences.append("Grey-level photos from scikit-image in train/ at their own size")
    defocus = [name for name in DEFOCUS if name in photos]
    if defocus:
        sentences.append(f"Held out with natural defocus: {', '.join(defocus)}")
    with open(os.path.join(output_dir, "LICENSES.md"), "w", encoding="utf-8") as file:
        file.write(". ".join(sentences) + ".\n\n" + "\n".join(lines) + "\n")


def write_textures(train_dir):
    """Copies `TEXTURES` from the installed scikit-image as grey RGB PNGs; returns the paths."""
    folder = embedded_photo_folder()
    written = []
    for name in sorted(TEXTURES):
        path = os.path.join(train_dir, f"texture_{name}")
        write_image(path, to_rgb_uint8(read_image(os.path.join(folder, name))))
        written.append(path)
    return written


def prepare_open_photos(output_dir, source_folder=None, textures=False, packages=PACKAGES):
    """Fetches (unless `source_folder` or the installed packages have them) and writes the split.

    Args:
        output_dir: str. Folder for train/, val/, release/ and LICENSES.md.
        source_folder: str or None. A root the packages are installed or unpacked
            in, or one folder holding the photo files. Defaults to `/` when the
            packages are installed, else fetches them into a temporary folder.
        textures: bool. Also writes `TEXTURES`. Defaults to False.
        packages: sequence of str. Only photos from these packages (`SHIPPED_PACKAGES`
            gives the shipped model's split). Defaults to `PACKAGES`.

    Returns:
        list of str: the image files written under `output_dir/train`, `/val` and `/release`.
    """
    if source_folder is None and all(
        photo_path("/", name) is not None for name in selected_photos(packages)
    ):
        source_folder = "/"
    if source_folder is not None:
        return write_split(source_folder, output_dir, textures, packages)
    with tempfile.TemporaryDirectory() as download_dir:
        root = fetch_packages(
            download_dir, sorted({p.package for p in selected_photos(packages).values()})
        )
        return write_split(root, output_dir, textures, packages)


@reports_errors(OSError, ValueError, subprocess.CalledProcessError)
def main(argv):
    from absl import flags

    del argv
    output_dir = flags.FLAGS.output_dir
    written = prepare_open_photos(
        output_dir, flags.FLAGS.source_folder, flags.FLAGS.textures, flags.FLAGS.packages
    )
    splits = [os.path.basename(os.path.dirname(path)) for path in written]
    counts = ", ".join(f"{split} {splits.count(split)}" for split in LONG_SIDES if split in splits)
    print(f"Wrote {len(written)} images ({counts}) and LICENSES.md under {output_dir}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string(
        "output_dir", "data/open_photos", "Folder for train/, val/, release/ and LICENSES.md."
    )
    flags.DEFINE_string(
        "source_folder",
        None,
        "Root the packages are installed or unpacked in, or a folder holding the photo files "
        "(default: / when installed, else fetch).",
    )
    flags.DEFINE_boolean(
        "textures", False, "Also write 6 grey-level texture photos from scikit-image."
    )
    flags.DEFINE_list(
        "packages",
        list(PACKAGES),
        "Only photos from these Debian packages; lomiri-wallpapers-16.04,lomiri-wallpapers-20.04 "
        "gives the shipped model's 12 + 3 photos.",
    )
    app.run(main)
