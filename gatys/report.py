"""Reports: HTML pages from escaping templates, CSV and JSON files, inlined images, contact sheets.

Shared by `gatys compare` (a study's report.html and grid.png) and `gatys gallery` (index.html and
contact-sheet.png), which pass data in and get files out. Every page extends
`templates/base.html`: inline CSS, and a Content-Security-Policy under which the page cannot load
anything but its own images (beside it, or inlined as data: URIs) and run no script. Templates
escape every value (autoescape) and fail on a missing one (StrictUndefined), so a file named
`<b>x</b>.png` is shown as text and a typo in a template is an error, not a blank.
Every file is written atomically. Depends on Pillow, jinja2 and numpy (and gatys.files,
gatys.errors); never on the engine.
"""
from __future__ import annotations

import base64
import csv
import functools
import inspect
import io
import json
import math
import numbers
import os
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import jinja2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .errors import GatysError
from .files import write_atomically

TEMPLATES = Path(__file__).with_name("templates")

# Contact-sheet layout, in pixels (see labelled_grid).
MARGIN = 8
GAP = 6
BACKGROUND = (255, 255, 255)
PLACEHOLDER = (215, 215, 215)
FRAME = (200, 200, 200)
INK = (20, 20, 20)

# Heatmap colours: viridis at five stops, dark (low) to light (high).
_HEAT_STOPS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
                       dtype=np.float64)


# ---------------------------------------------------------------------------- HTML

@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment over gatys/templates: autoescaping, strict, with the report filters.

    `environment().from_string("{% extends 'base.html' %}...")` renders an ad hoc page the same way.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Escape everything: the only templates are HTML, and a string template is HTML too.
        autoescape=jinja2.select_autoescape(default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=number, cell=cell_text, heat_style=heat_style, urlpath=url_path)
    env.globals.update(heatmap_cells=heatmap_cells, heat_gradient=heat_gradient)
    return env


def render(template_name: str, **context: Any) -> str:
    """Render a template from gatys/templates with `context`; every value is escaped."""
    return environment().get_template(template_name).render(**context)


def write_html(path: str | os.PathLike, template_name: str, **context: Any) -> Path:
    """Render `template_name` and write it to `path` atomically (UTF-8). Returns the path."""
    text = render(template_name, **context)
    return _write_bytes(path, text.encode("utf-8"))


def number(value: Any, digits: int = 3) -> str:
    """A number for people: `digits` significant digits ("%.3g"), integers whole, None as "–"."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{digits}g}"
    return str(value)


def cell_text(value: Any, digits: int = 3) -> str:
    """A table cell: numbers through `number`, None as "–", anything else as its str()."""
    if value is None or isinstance(value, numbers.Number):
        return number(value, digits)
    return str(value)


def url_path(path: str | os.PathLike) -> str:
    """A relative path as a URL path: '/'-separated and percent-encoded, so that a file name with
    '#', '?', '%', ':' or spaces (or one like 'javascript:x.png') still names that file."""
    return quote(Path(path).as_posix(), safe="/")


def heat_colour(value: float) -> str:
    """The heatmap colour ('#rrggbb') of a value in [0, 1] (clipped): dark violet to yellow."""
    position = min(max(float(value), 0.0), 1.0) * (len(_HEAT_STOPS) - 1)
    lower = min(int(position), len(_HEAT_STOPS) - 2)
    rgb = _HEAT_STOPS[lower] + (position - lower) * (_HEAT_STOPS[lower + 1] - _HEAT_STOPS[lower])
    return "#" + "".join(f"{round(channel):02x}" for channel in rgb)


def heat_style(value: float | None) -> str:
    """An inline CSS style for a heatmap cell of a value in [0, 1]; empty for None or NaN."""
    if value is None or not math.isfinite(value):
        return ""
    text = "#000" if value > 0.6 else "#fff"  # readable on the light and on the dark end
    return f"background:{heat_colour(value)};color:{text}"


def heat_gradient() -> str:
    """An inline CSS background showing the whole heatmap scale, low to high (for a legend)."""
    stops = ", ".join(heat_colour(i / 4) for i in range(5))
    return f"background:linear-gradient(to right, {stops})"


def heatmap_cells(matrix: Sequence[Sequence[float | None]],
                  spread: Sequence[Sequence[Any]] | None = None, *,
                  low: float | None = None, high: float | None = None, reverse: bool = False,
                  digits: int = 3) -> dict:
    """The cells of a heatmap table: each value scaled to [0, 1] between `low` and `high` (the
    matrix's finite minimum and maximum unless given), its text, its spread text and its style.

    `reverse` makes low values light instead of dark. Returns {"rows": [[{text, spread, style,
    empty}, ...], ...], "low": ..., "high": ...}; None and NaN cells are empty and uncoloured.
    `spread` has the matrix's shape; a number there is shown as "± number", a str as it is.
    """
    finite = [float(v) for row in matrix for v in row if v is not None and math.isfinite(v)]
    low = (min(finite) if finite else 0.0) if low is None else float(low)
    high = (max(finite) if finite else 1.0) if high is None else float(high)
    span = high - low
    rows = []
    for i, row in enumerate(matrix):
        cells = []
        for j, value in enumerate(row):
            empty = value is None or not math.isfinite(value)
            if empty:
                style = ""
            else:
                scaled = (float(value) - low) / span if span > 0 else 0.5
                style = heat_style(1.0 - scaled if reverse else scaled)
            extra = spread[i][j] if spread is not None else None
            if isinstance(extra, numbers.Real) and not isinstance(extra, bool):
                extra = "± " + number(extra, digits)
            cells.append({"text": "" if value is None else number(value, digits),
                          "spread": "" if extra is None else str(extra), "style": style,
                          "empty": empty})
        rows.append(cells)
    return {"rows": rows, "low": low, "high": high}


# ---------------------------------------------------------------------------- CSV and JSON

def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a UTF-8 CSV file atomically: one header line, then the rows (None as empty).
    Floats are written in full (repr) precision, for reading back by programs."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"a CSV row has {len(row)} values for {len(header)} columns: {row!r}")
        writer.writerow(["" if value is None else _plain(value) for value in row])
    return _write_bytes(path, text.getvalue().encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented UTF-8 JSON atomically. numpy values become plain numbers and
    lists, paths strings, and NaN or infinite floats null (JSON has no NaN)."""
    text = json.dumps(_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    return _write_bytes(path, (text + "\n").encode("utf-8"))


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones; everything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    _make_parent(path)
    write_atomically(path, lambda stream: stream.write(data))
    return path


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GatysError(f"cannot create the folder {path.parent}: {error.strerror or error}") from error


# ---------------------------------------------------------------------------- images

def open_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file for display: decoded, EXIF orientation applied, as RGB on white.
    Any failure is a GatysError naming the path."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return _rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError as error:
        raise GatysError(f"cannot read image {path}: no such file") from error
    except MemoryError:
        raise
    except Exception as error:  # Pillow fails with OSError, SyntaxError, ValueError… on a bad file
        raise GatysError(f"cannot read image {path}: {type(error).__name__}: {error}") from error


def image_data_uri(image: Image.Image | str | os.PathLike, max_side: int | None = None) -> str:
    """A 'data:image/png;base64,...' URI of an image (a PIL image or a path), to inline in a page.
    `max_side` shrinks it (never enlarges) so its longest side is at most that many pixels."""
    picture = _shrunk(image, max_side)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail(source: Image.Image | str | os.PathLike, destination: str | os.PathLike,
              max_side: int) -> Path:
    """Write a PNG of `source` shrunk (never enlarged) to at most `max_side` pixels a side,
    atomically, creating the destination's folder. Returns the destination path."""
    picture = _shrunk(source, max_side)
    destination = Path(destination)
    _make_parent(destination)
    write_atomically(destination, lambda stream: picture.save(stream, format="PNG"))
    return destination


def _shrunk(image: Image.Image | str | os.PathLike, max_side: int | None) -> Image.Image:
    picture = _rgb(image) if isinstance(image, Image.Image) else open_image(image)
    if max_side is not None:
        if max_side < 1:
            raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
        if max(picture.size) > max_side:
            picture = picture.copy()
            picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return picture


def _rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as RGB: transparency composited on white, 16-bit and float greyscale scaled."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        grey = np.asarray(image).astype(np.float64) / 257.0
        return Image.fromarray(np.clip(grey, 0, 255).round().astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        grey = np.asarray(image).astype(np.float64) * 255.0
        return Image.fromarray(np.clip(grey, 0, 255).round().astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


# ---------------------------------------------------------------------------- contact sheets

Cell = Image.Image | str | None


def labelled_grid(cells: Sequence[Sequence[Cell]], *, row_labels: Sequence[str],
                  column_labels: Sequence[str], row_headers: Sequence[Cell] | None = None,
                  column_headers: Sequence[Cell] | None = None, cell: int = 160,
                  title: str | None = None) -> Image.Image:
    """A labelled contact sheet of images, as an RGB PIL image.

    `cells` is a list of rows, each a list of PIL images or placeholders: None (a grey cell) or
    a short text drawn on a grey cell ("failed", "missing"). Each image is fitted into a
    cell×cell square keeping its aspect ratio, centred on white. Optional headers are images too
    (or placeholders): `column_headers` a row of them above the columns (the style images, say),
    each with its column label under it; `row_headers` a column of them left of the rows (the
    contents), each with its row label to its left; the corner stays empty. Without headers the
    labels alone head the rows and columns. Labels are wrapped and truncated with "…" to fit.

    Layout: MARGIN around everything, GAP between cells; a label column `cell` pixels wide at
    the left, then the row headers (if any) and the cells; from the top the title (if any), the
    column headers (if any), a band of two label lines, then the rows. So the width is
    2·MARGIN + cell + GAP + [cell + GAP] + columns·cell + (columns − 1)·GAP.
    """
    rows, columns = len(cells), len(column_labels)
    _check_grid(cells, row_labels, column_labels, row_headers, column_headers, cell)
    font = _font(max(10, cell // 12))
    line = _line_height(font)
    label_band = 2 * line + GAP
    title_font = _font(max(12, cell // 9)) if title else font
    title_band = _line_height(title_font) + GAP if title else 0

    cells_left = MARGIN + cell + GAP + (cell + GAP if row_headers is not None else 0)
    column_header_top = MARGIN + title_band
    label_top = column_header_top + (cell if column_headers is not None else 0)
    cells_top = label_top + label_band + GAP
    width = cells_left + columns * cell + (columns - 1) * GAP + MARGIN
    height = cells_top + rows * cell + (rows - 1) * GAP + MARGIN

    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        _draw_lines(draw, _wrap(title, title_font, width - 2 * MARGIN, 1), title_font,
                    (MARGIN, MARGIN, width - MARGIN, MARGIN + title_band - GAP), align="left")
    for j in range(columns):
        left = cells_left + j * (cell + GAP)
        if column_headers is not None:
            _paste_cell(sheet, draw, column_headers[j], (left, column_header_top), cell, font)
        _draw_lines(draw, _wrap(column_labels[j], font, cell, 2), font,
                    (left, label_top + GAP // 2, left + cell, label_top + label_band), align="center")
    for i in range(rows):
        top = cells_top + i * (cell + GAP)
        _draw_lines(draw, _wrap(row_labels[i], font, cell, max(1, cell // line)), font,
                    (MARGIN, top, MARGIN + cell, top + cell), align="right")
        if row_headers is not None:
            _paste_cell(sheet, draw, row_headers[i], (MARGIN + cell + GAP, top), cell, font)
        for j in range(columns):
            _paste_cell(sheet, draw, cells[i][j], (cells_left + j * (cell + GAP), top), cell, font)
    return sheet


def _check_grid(cells, row_labels, column_labels, row_headers, column_headers, cell) -> None:
    if cell < 16:
        raise ValueError(f"a grid cell must be at least 16 pixels, got {cell}")
    if not cells or not column_labels:
        raise ValueError("a grid needs at least one row and one column")
    if len(row_labels) != len(cells):
        raise ValueError(f"{len(row_labels)} row labels for {len(cells)} rows")
    for i, row in enumerate(cells):
        if len(row) != len(column_labels):
            raise ValueError(f"row {i} has {len(row)} cells for {len(column_labels)} column labels")
    if row_headers is not None and len(row_headers) != len(cells):
        raise ValueError(f"{len(row_headers)} row headers for {len(cells)} rows")
    if column_headers is not None and len(column_headers) != len(column_labels):
        raise ValueError(f"{len(column_headers)} column headers for {len(column_labels)} columns")


def _paste_cell(sheet: Image.Image, draw: ImageDraw.ImageDraw, content: Cell,
                corner: tuple[int, int], cell: int, font) -> None:
    """One cell at `corner`: an image fitted and centred on white, or a grey placeholder."""
    left, top = corner
    box = (left, top, left + cell - 1, top + cell - 1)
    draw.rectangle((left - 1, top - 1, left + cell, top + cell), outline=FRAME)
    if isinstance(content, Image.Image):
        picture = _rgb(content)
        scale = cell / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        if size != picture.size:
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        sheet.paste(picture, (left + (cell - size[0]) // 2, top + (cell - size[1]) // 2))
        return
    draw.rectangle(box, fill=PLACEHOLDER)
    if content:
        lines = _wrap(str(content), font, cell - 2 * GAP, max(1, cell // _line_height(font)))
        _draw_lines(draw, lines, font, (left + GAP, top, left + cell - GAP, top + cell), align="center")


@functools.cache
def _font(size: int):
    """Pillow's default font at about `size` pixels where this Pillow can scale it (10.1 and
    newer, with FreeType); its one small bitmap font otherwise."""
    if "size" in inspect.signature(ImageFont.load_default).parameters:
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()


@functools.cache
def _ellipsis(font) -> str:
    return "…" if _has_glyph(font, "…") else "..."


# Stand-ins for characters the font cannot draw: Pillow's bundled fonts cover ASCII and little else.
_ASCII_STAND_INS = {"×": "x", "–": "-", "—": "-", "…": "...", "‘": "'", "’": "'", "“": '"', "”": '"'}


@functools.cache
def _has_glyph(font, character: str) -> bool:
    """Whether the font draws the character as itself: Pillow's bitmap fonts cannot encode past
    Latin-1, and a FreeType font draws a character it lacks as the same box as U+10FFFD."""
    try:
        mask = font.getmask(character)
        missing = font.getmask("\U0010FFFD")
    except UnicodeEncodeError:
        return False
    return character.isspace() or (mask.size, bytes(mask)) != (missing.size, bytes(missing))


def _printable(font, text: str) -> str:
    """The text on one line, each character the font lacks replaced by an ASCII stand-in
    ("é" by "e", "×" by "x") or by "?"."""
    text = " ".join(str(text).split())  # no newlines or tabs in a label
    return "".join(c if _has_glyph(font, c) else _stand_in(c) for c in text)


def _stand_in(character: str) -> str:
    if character in _ASCII_STAND_INS:
        return _ASCII_STAND_INS[character]
    ascii_only = unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode("ascii")
    return ascii_only or "?"


def _line_height(font) -> int:
    left, top, right, bottom = font.getbbox("Ag|")
    return bottom + 2


def _text_width(font, text: str) -> float:
    left, top, right, bottom = font.getbbox(text)
    return right - min(left, 0)


_BREAKS = " _-.:/=+,;)"


def _wrap(text: str, font, width: int, max_lines: int) -> list[str]:
    """Greedy wrap into at most `max_lines` lines of at most `width` pixels, breaking after a
    separator where one is near the end of a line; the last line ends in "…" if text is left."""
    text = _printable(font, text)
    lines: list[str] = []
    while text and len(lines) < max_lines:
        if _text_width(font, text) <= width:
            lines.append(text)
            return lines
        if len(lines) == max_lines - 1:
            lines.append(_truncate(text, font, width))
            return lines
        fits = _longest_prefix(text, font, width)
        cut = max((text.rfind(c, 0, fits) + 1 for c in _BREAKS), default=0)
        if cut < fits // 2:
            cut = fits
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return lines


def _longest_prefix(text: str, font, width: float, suffix: str = "") -> int:
    """The largest n (at least 1) such that text[:n] + suffix fits in `width` pixels."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _text_width(font, text[:middle] + suffix) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _truncate(text: str, font, width: int) -> str:
    if _text_width(font, text) <= width:
        return text
    ellipsis = _ellipsis(font)
    return text[:_longest_prefix(text, font, width, ellipsis)].rstrip() + ellipsis


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[str], font, box: tuple[int, int, int, int],
                align: str) -> None:
    """Draw lines vertically centred in box, aligned left, centre or right."""
    left, top, right, bottom = box
    line = _line_height(font)
    y = top + max(0, (bottom - top - line * len(lines)) // 2)
    for text in lines:
        width = _text_width(font, text)
        x = {"left": left, "center": left + (right - left - width) / 2, "right": right - width}[align]
        draw.text((round(x), y), text, font=font, fill=INK)
        y += line
