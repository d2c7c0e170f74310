"""Images in and out: read any Pillow format, resize, convert to and from tensors, save atomically.

Inside the engine an image is a float32 RGB tensor in [0, 1], shape (1, 3, H, W), contiguous.
Reading normalises every Pillow mode to that: EXIF orientation applied, greyscale replicated,
transparency composited on white, 16-bit greyscale kept at full precision (Pillow itself reads
16-bit *colour* PNGs as 8-bit RGB, so their low byte is lost before we see them).
Saving writes a temporary file in the target directory, fsyncs it and renames it over the
target, so a reader never sees a partial file. The run's settings travel with the image as JSON:
in a PNG text chunk (key "gatys") for PNG, in the EXIF UserComment for JPEG and WebP.
Depends on torch, numpy and Pillow only (and on gatys.errors).
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterable, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin

from .errors import GatysError
from .files import write_atomically

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
METADATA_KEY = "gatys"
PIXEL_LIMIT_VARIABLE = "GATYS_MAX_IMAGE_PIXELS"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_ASCII_PREFIX = b"ASCII\x00\x00\x00"  # the EXIF UserComment character-code header
# Modes each writer accepts as they are; any other PIL image is normalised to RGB first.
_WRITABLE_MODES = {
    "PNG": {"1", "L", "LA", "I;16", "P", "RGB", "RGBA"},
    "JPEG": {"L", "RGB", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
}


# ---------------------------------------------------------------------------- reading

def load_image(path: str | os.PathLike, size: int | None = None,
               max_pixels: int | None = None) -> torch.Tensor:
    """Read an image file as a (1, 3, H, W) float32 RGB tensor in [0, 1].

    `size` resizes so that the longest side is `size` pixels (up or down, bicubic with
    antialiasing). `max_pixels` refuses images with more pixels than that before decoding them
    (a decompression bomb); None means GATYS_MAX_IMAGE_PIXELS from the environment, else Pillow's
    own limit, `PIL.Image.MAX_IMAGE_PIXELS` (about 89 Mpx). Every failure is a GatysError naming
    the path.
    """
    path = Path(path)
    if not path.exists():
        raise GatysError(f"cannot read image {path}: no such file")
    if path.is_dir():
        raise GatysError(f"cannot read image {path}: it is a directory, not an image file")
    image = _open_decoded(path, max_pixels)
    tensor = from_pil(image)
    return tensor if size is None else resize(tensor, size=size)


def _open_decoded(path: Path, max_pixels: int | None) -> Image.Image:
    """Open, size-check, decode and orient an image file; any failure becomes a GatysError."""
    limit = max_pixels if max_pixels is not None else _pixel_limit()
    try:
        with _own_limit_only(), Image.open(path) as image:
            width, height = image.size
            if limit is not None and width * height > limit:
                raise GatysError(f"cannot read image {path}: {width}×{height} is {width * height} pixels, over "
                                 f"the decompression-bomb limit of {limit}; resize it first, or raise the limit "
                                 f"with {PIXEL_LIMIT_VARIABLE}=N in the environment")
            image.load()
            return ImageOps.exif_transpose(image)
    except GatysError:
        raise
    except PermissionError as error:
        raise GatysError(f"cannot read image {path}: permission denied") from error
    except MemoryError:
        raise
    except Exception as error:
        # Pillow's decoders fail with OSError, SyntaxError, ValueError, EOFError, struct.error…
        # on a corrupt or truncated user file: all of them mean "this file is not a usable image".
        reason = "not an image Pillow can identify" if isinstance(error, Image.UnidentifiedImageError) \
            else f"corrupt or unreadable ({type(error).__name__}: {error})"
        raise GatysError(f"cannot read image {path}: {reason}") from error


def _pixel_limit() -> int | None:
    """Pillow's limit, or GATYS_MAX_IMAGE_PIXELS from the environment (a count, or 'none' for no limit)."""
    value = os.environ.get(PIXEL_LIMIT_VARIABLE)
    if value is None:
        return Image.MAX_IMAGE_PIXELS
    if value.strip().lower() == "none":
        return None
    try:
        return int(float(value))
    except ValueError:
        raise GatysError(f"{PIXEL_LIMIT_VARIABLE} must be a number of pixels or 'none', not {value!r}") from None


@contextlib.contextmanager
def _own_limit_only():
    """Pillow refuses anything over twice its own limit before we see the size: we check ours instead,
    from the header, before anything is decoded."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def from_pil(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image of any mode to a (1, 3, H, W) float32 RGB tensor in [0, 1].

    Greyscale is replicated to three channels, transparency is composited on white, 16-bit
    greyscale (modes I;16*, I) is scaled by 65535 at full precision, mode F is taken as [0, 1].
    """
    array = _to_rgb_array(image)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor.permute(2, 0, 1).unsqueeze(0).contiguous()


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """A float64 (H, W, 3) array in [0, 1] from any PIL mode."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        return _grey(np.asarray(image).astype(np.float64) / 65535.0)
    if mode == "F":
        return _grey(np.asarray(image).astype(np.float64))
    if mode in ("1", "L"):
        return _grey(np.asarray(image.convert("L")).astype(np.float64) / 255.0)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        image = _convert_rgb(image)  # CMYK, YCbCr, HSV, RGBX, …
    array = np.asarray(image).astype(np.float64) / 255.0
    return _on_white(array) if image.mode == "RGBA" else array


def _convert_rgb(image: Image.Image) -> Image.Image:
    """Pillow's own conversion to RGB, with a GatysError for modes it cannot convert."""
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise GatysError(f"cannot convert an image of mode {image.mode} to RGB: {error}") from error


def _grey(values: np.ndarray) -> np.ndarray:
    """(H, W) grey values → (H, W, 3), clipped to [0, 1]."""
    return np.repeat(np.clip(values, 0.0, 1.0)[..., None], 3, axis=2)


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite straight-alpha (H, W, 4) in [0, 1] over a white background."""
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)


ImageLike = Union[str, os.PathLike, Image.Image, torch.Tensor]


def as_image(image: ImageLike) -> torch.Tensor:
    """A path, PIL image or tensor as a (1, 3, H, W) float32 tensor in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, torch.Tensor):
        tensor = image.unsqueeze(0) if image.dim() == 3 else image
        if tensor.dim() != 4 or tensor.shape[:2] != (1, 3):
            raise GatysError(f"an image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        return tensor.detach().float().clamp(0, 1).contiguous()
    raise GatysError(f"cannot use a {type(image).__name__} as an image: give a path, a PIL image or a tensor")


# ---------------------------------------------------------------------------- resizing

def scaled_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(H, W) with the longest side `longest` and the aspect ratio kept; both at least 1."""
    if int(longest) != longest or longest < 1:
        raise GatysError(f"image size must be a positive whole number of pixels, got {longest}")
    scale = longest / max(height, width)
    if height >= width:
        return int(longest), max(1, round(width * scale))
    return max(1, round(height * scale)), int(longest)


def resize(image: torch.Tensor, size: int | None = None,
           shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Resize a (B, C, H, W) image: longest side `size`, or exactly `shape` = (H, W).

    Bicubic with antialiasing (which matters when shrinking), clamped to [0, 1] because bicubic
    overshoots at edges. With neither argument, or the same size, the image is returned as is.
    """
    if size is not None and shape is not None:
        raise TypeError("resize() takes size or shape, not both")
    if image.dim() != 4:
        raise ValueError(f"expected an image of shape (B, C, H, W), got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    if size is not None:
        shape = scaled_size(height, width, size)
    if shape is None or tuple(shape) == (height, width):
        return image.contiguous()
    if min(shape) < 1:
        raise GatysError(f"image shape must be at least 1x1 pixels, got {tuple(shape)}")
    resized = F.interpolate(image.float(), size=tuple(shape), mode="bicubic",
                            align_corners=False, antialias=True)
    return resized.clamp_(0.0, 1.0).to(image.dtype).contiguous()


# ---------------------------------------------------------------------------- writing

def to_pil(image: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W), (3, H, W), (1, 1, H, W) or (1, H, W) tensor in [0, 1] → 8-bit RGB or L."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil() converts one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (1, 3, H, W) or (1, 1, H, W), got {tuple(image.shape)}")
    array = image.detach().to("cpu", torch.float32).clamp(0.0, 1.0).mul(255.0).round()
    array = array.to(torch.uint8).permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        return Image.fromarray(array[..., 0], mode="L")
    return Image.fromarray(array, mode="RGB")


def output_format(path: str | os.PathLike) -> str:
    """The Pillow format name for an output path, chosen by its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(FORMATS)
        raise GatysError(f"cannot write {path}: unsupported extension {suffix or '(none)'!r}; "
                         f"use one of {supported}")
    return FORMATS[suffix]


def _check_directory(path: Path) -> None:
    """The output's directory must exist: we never create directories behind the user's back."""
    if not path.parent.is_dir():
        raise GatysError(f"cannot write {path}: directory {path.parent} does not exist; create it first")


def check_output_path(path: str | os.PathLike,
                      inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Refuse an output path before any work is done; return it resolved.

    Refused: an unsupported extension, a missing (or non-directory) parent, an existing
    directory, and any path that names the same file as one of `inputs`, however spelled
    (resolved paths, symlinks, hard links via samefile). None entries in `inputs` are skipped.
    """
    path = Path(path)
    output_format(path)
    _check_directory(path)
    if path.is_dir():
        raise GatysError(f"cannot write {path}: it is a directory; give a file name")
    if not os.access(path.parent, os.W_OK):
        raise GatysError(f"cannot write {path}: directory {path.parent} is not writable")
    resolved = path.resolve()
    for source in inputs:
        if source is not None and _same_file(resolved, Path(source)):
            raise GatysError(f"refusing to write {path}: it would overwrite the input {source}; "
                             f"choose another output path")
    return resolved


def _same_file(resolved: Path, other: Path) -> bool:
    """Whether two paths name one file: equal when resolved, or the same inode if both exist."""
    if resolved == other.resolve():
        return True
    try:
        return os.path.samefile(resolved, other)
    except OSError:  # one of them does not exist (yet)
        return False


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike,
               metadata: dict | None = None, quality: int = 95) -> Path:
    """Write an image atomically; the format follows the extension (.png, .jpg/.jpeg, .webp).

    `metadata` (JSON-serialisable; other values are written with str()) goes into a PNG text
    chunk keyed "gatys", or into the EXIF UserComment for JPEG and WebP; `read_metadata` reads
    either back. `quality` applies to JPEG and WebP. The file appears complete or not at all:
    an existing file is replaced only once the new one is fully written. Returns the path.
    """
    path = Path(path)
    image_format = output_format(path)
    if not 1 <= quality <= 100:
        raise GatysError(f"image quality must be between 1 and 100, got {quality}")
    _check_directory(path)
    picture = _writable(image, image_format)
    options = _save_options(image_format, metadata, quality)
    write_atomically(path, lambda stream: picture.save(stream, format=image_format, **options))
    return path


def save_image_digested(image: torch.Tensor | Image.Image, path: str | os.PathLike,
                        metadata: dict | None = None) -> str:
    """save_image, returning the SHA-256 of the bytes this call wrote (for a manifest to vouch for)."""
    path = Path(path)
    image_format = output_format(path)
    _check_directory(path)
    picture = _writable(image, image_format)
    options = _save_options(image_format, metadata, 95)
    return write_atomically(path, lambda stream: picture.save(stream, format=image_format, **options))


def _writable(image: torch.Tensor | Image.Image, image_format: str) -> Image.Image:
    """A PIL image in a mode the format's writer accepts (others normalised to RGB on white)."""
    if isinstance(image, torch.Tensor):
        return to_pil(image)
    if image.mode in _WRITABLE_MODES[image_format]:
        return image
    return to_pil(from_pil(image))


def _save_options(image_format: str, metadata: dict | None, quality: int) -> dict:
    """Pillow save keywords: the metadata in the right container, and the quality."""
    options: dict = {} if image_format == "PNG" else {"quality": quality}
    if metadata is None:
        return options
    text = json.dumps(metadata, sort_keys=True, default=str)  # ASCII: fits a tEXt chunk
    if image_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(METADATA_KEY, text)
        options["pnginfo"] = info
    else:
        exif = Image.Exif()
        # the Exif sub-IFD as a whole dict: Pillow < 11.1 drops entries set through get_ifd()
        exif[_EXIF_IFD] = {_USER_COMMENT: _ASCII_PREFIX + text.encode("ascii")}
        options["exif"] = exif
    return options


def read_metadata(path: str | os.PathLike) -> dict | None:
    """The settings `save_image` stored with an image (PNG text chunk or EXIF UserComment).

    None when the image carries none (or the entry is not a JSON object, as another program's
    EXIF comment would be).
    """
    path = Path(path)
    if not path.is_file():
        raise GatysError(f"cannot read metadata from {path}: no such file")
    try:
        with Image.open(path) as image:
            text = _metadata_text(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise GatysError(f"cannot read metadata from {path}: {error}") from error
    try:
        settings = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None  # e.g. another program's EXIF comment: not ours
    return settings if isinstance(settings, dict) else None


def _metadata_text(image: Image.Image) -> str | None:
    """The raw JSON text in a PNG "gatys" chunk or a gatys-written EXIF UserComment."""
    if image.format == "PNG":
        image.load()  # text chunks after the image data are read only on load
        return image.text.get(METADATA_KEY)
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, bytes) and comment.startswith(_ASCII_PREFIX):
        return comment[len(_ASCII_PREFIX):].decode("ascii", errors="replace")
    return None
