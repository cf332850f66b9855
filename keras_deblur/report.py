"""Visual report: labelled comparison grids and one HTML page of all samples.

`comparison_grid` puts images side by side (e.g. blurred | deblurred | sharp)
under a caption bar each ("deblurred  PSNR 27.31 dB"); `write_html_report`
writes an `index.html` that lists every sample with its grid and metrics, so a
run can be browsed and shared without extra tools.
"""

import html
import math
import os

import cv2
import numpy as np

_BAR_COLOUR = (32, 32, 32)
_TEXT_COLOUR = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _as_rgb(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"grid panels must be uint8. Received: dtype={image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(f"grid panels must be (H, W) or (H, W, 3|4). Received: shape={image.shape}")


def _caption(text, width):
    """A dark bar with `text` in white, the font scaled to the panel width."""
    scale = float(np.clip(width / 640.0, 0.35, 1.5))
    thickness = max(1, round(scale * 2))
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    # Shrink long captions to fit rather than cut them off.
    if text_w > width - 8:
        scale *= (width - 8) / text_w
        (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    height = text_h + baseline + 12
    bar = np.full((height, width, 3), _BAR_COLOUR, np.uint8)
    cv2.putText(bar, text, (4, 6 + text_h), _FONT, scale, _TEXT_COLOUR, thickness, cv2.LINE_AA)
    return bar


def comparison_grid(panels, gap=4):
    """Places labelled images side by side, each under a caption bar.

    Args:
        panels: list of `(caption, image)`; images uint8 `(H, W)` or `(H, W, 3|4)`,
            all the same height and width (alpha is dropped).
        gap: int. White pixels between panels. Defaults to 4.

    Returns:
        uint8 RGB array `(caption_height + H, n * W + (n - 1) * gap, 3)`.

    Example:
        >>> grid = comparison_grid([("blurred  PSNR 24.1 dB", blurred),
        ...                         ("deblurred  PSNR 27.3 dB", restored),
        ...                         ("sharp", sharp)])
    """
    if not panels:
        raise ValueError("comparison_grid needs at least one panel")
    images = [_as_rgb(image) for _, image in panels]
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"grid panels must all have the same size. Received: {sorted(shapes)}")
    height, width = images[0].shape[:2]
    bars = [_caption(str(caption), width) for caption, _ in panels]
    bar_height = max(bar.shape[0] for bar in bars)
    columns = []
    for bar, image in zip(bars, images, strict=True):
        padded_bar = np.full((bar_height, width, 3), _BAR_COLOUR, np.uint8)
        padded_bar[: bar.shape[0]] = bar
        columns.append(np.concatenate([padded_bar, image], axis=0))
    spacer = np.full((bar_height + height, gap, 3), 255, np.uint8)
    pieces = [columns[0]]
    for column in columns[1:]:
        pieces += [spacer, column]
    return np.concatenate(pieces, axis=1)


def _format(value):
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def write_html_report(path, samples, columns, summary=None, title="keras-deblur evaluation"):
    """Writes one HTML page listing every sample with its metrics and grid image.

    Args:
        path: str. The HTML file to write (parent folders are created).
        samples: list of dicts. Each has the keys in `columns` and optionally
            `grid`, a path to the sample's grid image (made relative to the page).
        columns: list of str. Metric keys shown as table columns, in order.
        summary: dict or None. Mean values shown above the table (key -> value).
        title: str. Page title.

    Returns:
        str: `path`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    escape = html.escape
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right;vertical-align:top}th{background:#eee}td.name{text-align:left}"
        "img{max-width:960px;width:100%}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if summary:
        lines.append("<h2>Summary (means)</h2><table>")
        for key, value in summary.items():
            lines.append(f"<tr><th>{escape(str(key))}</th><td>{escape(_format(value))}</td></tr>")
        lines.append("</table>")
    lines.append(f"<h2>Samples ({len(samples)})</h2><table><tr><th>sample</th>")
    lines += [f"<th>{escape(column)}</th>" for column in columns]
    lines.append("</tr>")
    for sample in samples:
        name = escape(str(sample.get("name", "")))
        cells = "".join(f"<td>{escape(_format(sample.get(c, '')))}</td>" for c in columns)
        lines.append(f'<tr><td class="name">{name}</td>{cells}</tr>')
        grid = sample.get("grid")
        if grid:
            relative = os.path.relpath(os.path.abspath(grid), folder).replace(os.sep, "/")
            source = escape(relative, quote=True)
            lines.append(
                f'<tr><td colspan="{len(columns) + 1}" class="name">'
                f'<a href="{source}"><img src="{source}" alt="{name}" loading="lazy"></a></td></tr>'
            )
    lines.append("</table></body></html>")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
