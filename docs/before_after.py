"""Draw README's picture: a held-out photo blurred, unsharp-masked, deblurred, and sharp.

    python docs/before_after.py --photo data/open_photos/val/wool_mill_machine_720.png \
        --exposure 0.1 --seed 3 --crop 200,120,240 --output docs/before_after.jpg

Rerun it whenever new weights ship: it prints the whole photo's PSNR gains, which the
README caption quotes. The kernel is one centred random-trajectory kernel drawn with
`--seed`, as in the validation.
"""

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_deblur import load_generator  # noqa: E402
from keras_deblur.baselines import unsharp_mask  # noqa: E402
from keras_deblur.data.images import read_image, write_image  # noqa: E402
from keras_deblur.data.motion_blur import random_psf, synthesize_blur  # noqa: E402
from keras_deblur.inference import deblur  # noqa: E402
from keras_deblur.metrics import psnr  # noqa: E402

LABELS = ("blurred", "unsharp masking", "deblurred", "sharp")


def _labelled(tile, text):
    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (tile.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", required=True, help="A photo the model never trained on.")
    parser.add_argument("--weights", default="mobile", help="Preset or .keras file.")
    parser.add_argument("--exposure", type=float, default=0.005, help="Shake exposure.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kernel.")
    parser.add_argument("--crop", default=None, help="top,left,size of the crop shown.")
    parser.add_argument("--output", default="docs/before_after.jpg")
    args = parser.parse_args()

    sharp = read_image(args.photo)
    rng = np.random.default_rng(args.seed)
    kernel = random_psf(rng, exposure=args.exposure, fraction=1.0)
    blurred, _ = synthesize_blur(sharp, rng, kernel=kernel)
    images = (blurred, unsharp_mask(blurred), deblur(load_generator(args.weights), blurred), sharp)
    gains = [psnr(sharp, image) - psnr(sharp, blurred) for image in images[:3]]
    print(
        f"{args.photo}: blurred {psnr(sharp, blurred):.2f} dB, kernel {kernel.shape[0]} px; "
        f"gain unsharp {gains[1]:+.2f} dB, deblurred {gains[2]:+.2f} dB"
    )
    top, left, size = (int(v) for v in args.crop.split(",")) if args.crop else (0, 0, 256)
    tiles = [image[top : top + size, left : left + size] for image in images]
    texts = [
        LABELS[0],
        f"{LABELS[1]} {gains[1]:+.2f} dB",
        f"{LABELS[2]} {gains[2]:+.2f} dB",
        LABELS[3],
    ]
    row = np.concatenate(
        [_labelled(tile, text) for tile, text in zip(tiles, texts, strict=True)], axis=1
    )
    write_image(args.output, row)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
