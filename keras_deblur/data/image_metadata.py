"""What an image file says about itself: size, EXIF orientation, ICC profile and EXIF.

OpenCV decodes our pixels but reads none of this: it ignores the EXIF
orientation of phone photos (with `IMREAD_UNCHANGED`), cannot report a size
before decoding (a decompression bomb is only caught once allocated) and drops
ICC profiles and EXIF on write. Pillow reads headers lazily, so
`read_header` gets all of it without decoding a pixel, and `embed_metadata`
puts the ICC profile and EXIF back into the JPEG or PNG bytes that OpenCV
encoded.
"""

import dataclasses
import re
import struct
import warnings
import zlib

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A JPEG segment holds at most 65535 bytes, its 2 length bytes included.
_JPEG_SEGMENT_MAX = 65535 - 2
_ICC_MARKER = b"ICC_PROFILE\x00"


class PixelBudgetError(ValueError):
    """The header claims more pixels than the reader is allowed to decode."""


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """An image file's header.

    Attributes:
        width, height: int. Stored size, before the EXIF orientation.
        format: str. Pillow's format name ("PNG", "JPEG", ...).
        orientation: int. EXIF orientation 1-8 (1: stored upright).
        frames: int. Frames in the file (animated GIF/WebP/PNG: more than 1).
        icc_profile: bytes or None. Embedded ICC colour profile.
        exif: bytes or None. Raw EXIF (TIFF structure, without the "Exif" prefix).
    """

    width: int
    height: int
    format: str
    orientation: int = 1
    frames: int = 1
    icc_profile: bytes | None = None
    exif: bytes | None = None

    @property
    def pixels(self):
        return self.width * self.height

    @property
    def display_size(self):
        """`(height, width)` as viewers show it: orientations 5-8 swap the sides."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width


def read_header(path, max_pixels):
    """Reads `path`'s header without decoding pixels.

    Args:
        path: str. Image file.
        max_pixels: int. Pixel budget; a header claiming more raises.

    Returns:
        `ImageHeader`, or None when Pillow cannot parse the file (the decoder
        then has the last word).

    Raises:
        PixelBudgetError: one line naming the file, its size and the budget.
    """
    try:
        with warnings.catch_warnings():
            # We enforce our own budget below; Pillow's warning would be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                header = _header_of(image)
    except Image.DecompressionBombError as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        claimed = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise PixelBudgetError(_budget_message(path, claimed, max_pixels)) from None
    except Exception:  # Pillow raises many types for files it cannot parse.
        return None
    if header.pixels > max_pixels:
        claimed = f"{header.width}x{header.height} = {header.pixels:,} pixels"
        raise PixelBudgetError(_budget_message(path, claimed, max_pixels))
    return header


def _budget_message(path, claimed, max_pixels):
    return (
        f"{path}: header claims {claimed}, over the {max_pixels:,}-pixel budget "
        "(a decompression bomb, or raise the budget with --max_pixels)"
    )


def _header_of(image):
    exif = image.info.get("exif")
    if exif and exif.startswith(_EXIF_PREFIX):
        exif = exif[len(_EXIF_PREFIX) :]
    try:
        orientation = int(image.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # A damaged EXIF block must not make the photo unreadable.
        orientation = 1
    return ImageHeader(
        width=image.width,
        height=image.height,
        format=image.format or "",
        orientation=orientation if 1 <= orientation <= 8 else 1,
        frames=int(getattr(image, "n_frames", 1)),
        icc_profile=image.info.get("icc_profile") or None,
        exif=exif or None,
    )


def apply_orientation(image, orientation):
    """Turns a stored `(height, width[, channels])` array upright for EXIF `orientation`."""
    transposed = np.swapaxes(image, 0, 1)
    upright = {
        1: image,
        2: image[:, ::-1],
        3: image[::-1, ::-1],
        4: image[::-1],
        5: transposed,
        6: transposed[:, ::-1],
        7: transposed[::-1, ::-1],
        8: transposed[::-1],
    }[orientation]
    return np.ascontiguousarray(upright)


def exif_upright(exif):
    """`exif` (TIFF bytes) with its IFD0 orientation set to 1, everything else byte for byte.

    Patching in place keeps maker notes and offsets valid, which re-serialising
    would not. Returns the input unchanged when it holds no orientation tag,
    and None when the bytes are not a TIFF structure.
    """
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return None
    order = "<" if exif[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", exif, 4)
    if ifd + 2 > len(exif):
        return None
    (count,) = struct.unpack_from(order + "H", exif, ifd)
    patched = bytearray(exif)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(exif) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", exif, entry)
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT, stored in the entry itself
            struct.pack_into(order + "H", patched, entry + 8, 1)
    return bytes(patched)


def embed_metadata(encoded, extension, icc_profile=None, exif=None):
    """Adds an ICC profile and EXIF (orientation reset to 1) to encoded JPEG or PNG bytes.

    Other formats are returned unchanged: OpenCV writes WebP, TIFF and BMP
    without these blocks.

    Args:
        encoded: bytes. A whole image file as OpenCV's `imencode` produced it.
        extension: str. Its extension (".jpg", ".png", ...).
        icc_profile, exif: bytes or None. From `ImageHeader`.

    Returns:
        bytes.
    """
    exif = exif_upright(exif) if exif else None
    extension = extension.lower()
    if extension in (".jpg", ".jpeg") and encoded[:2] == b"\xff\xd8":
        return _embed_in_jpeg(encoded, icc_profile, exif)
    if extension == ".png" and encoded.startswith(_PNG_SIGNATURE):
        return _embed_in_png(encoded, icc_profile, exif)
    return encoded


def _jpeg_segment(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def _embed_in_jpeg(encoded, icc_profile, exif):
    segments = []
    if exif and len(_EXIF_PREFIX) + len(exif) <= _JPEG_SEGMENT_MAX:
        segments.append(_jpeg_segment(0xE1, _EXIF_PREFIX + exif))
    if icc_profile:
        size = _JPEG_SEGMENT_MAX - len(_ICC_MARKER) - 2
        chunks = [icc_profile[i : i + size] for i in range(0, len(icc_profile), size)]
        if len(chunks) <= 255:
            for number, chunk in enumerate(chunks, start=1):
                payload = _ICC_MARKER + bytes([number, len(chunks)]) + chunk
                segments.append(_jpeg_segment(0xE2, payload))
    # After SOI and OpenCV's JFIF APP0 segment, where readers look for them.
    position = 2
    if encoded[2:4] == b"\xff\xe0":
        position = 4 + struct.unpack(">H", encoded[4:6])[0]
    return encoded[:position] + b"".join(segments) + encoded[position:]


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _embed_in_png(encoded, icc_profile, exif):
    chunks = []
    if icc_profile:
        chunks.append(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif))
    # Right after IHDR: iCCP must precede PLTE and IDAT, eXIf precedes IDAT.
    (ihdr_length,) = struct.unpack(">I", encoded[8:12])
    position = 8 + 12 + ihdr_length
    return encoded[:position] + b"".join(chunks) + encoded[position:]
