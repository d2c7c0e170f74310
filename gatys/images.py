"""Images in and out: read any Pillow format, resize, convert to and from tensors, save atomically.

Inside the engine an image is a float32 RGB tensor in [0, 1], shape (1, 3, H, W), contiguous.
Reading normalises every Pillow mode to that: EXIF orientation applied, greyscale replicated,
transparency composited on white, 16-bit greyscale kept at full precision (Pillow itself reads
16-bit *colour* PNGs as 8-bit RGB, so their low byte is lost before we see them).
Saving writes a temporary file in the target directory, fsyncs it and renames it over the
target, so a reader never sees a partial file. The run's settings travel with the image as JSON:
in a PNG text chunk (key "gatys") for PNG, in the ImageDescription tag (after "gatys:") for TIFF,
in the EXIF UserComment for JPEG and WebP.
For print, an output can have 16 bits per channel (PNG, TIFF) and carry the content's ICC profile
and resolution (`print_info`). Pillow holds no 16-bit colour image, so a 16-bit PNG is encoded
in gatys/png16.py (numpy and zlib) and a 16-bit TIFF by tifffile, an optional package imported only for it.
Depends on torch, numpy and Pillow (and tifffile, for 16-bit TIFF only), gatys.errors and gatys.png16.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin, features

from .errors import GatysError
from .png16 import INCHES_PER_METRE, write_png16
from .files import write_atomically

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
BIT_DEPTHS = {"PNG": (8, 16), "TIFF": (8, 16), "JPEG": (8,), "WEBP": (8,)}  # bits per channel each format holds
CARRIES_DPI = {"PNG", "TIFF", "JPEG"}  # WebP has no resolution field; all four carry an ICC profile
METADATA_KEY = "gatys"
PIXEL_LIMIT_VARIABLE = "GATYS_MAX_IMAGE_PIXELS"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_ASCII_PREFIX = b"ASCII\x00\x00\x00"  # the EXIF UserComment character-code header
_TIFF_PREFIX = METADATA_KEY + ":"  # before the JSON in a TIFF's ImageDescription: tifffile writes JSON there too
_ORIENTATION = 0x0112
# Modes each writer accepts as they are; any other PIL image is normalised to RGB first.
_WRITABLE_MODES = {
    "PNG": {"1", "L", "LA", "I;16", "P", "RGB", "RGBA"},
    "JPEG": {"L", "RGB", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
    "TIFF": {"1", "L", "I;16", "RGB", "RGBA", "CMYK"},
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


def print_info(path: str | os.PathLike) -> dict:
    """The ICC profile and resolution of an image file, for a picture made from it to print as it does.

    {"icc_profile": bytes or None, "dpi": (x, y) or None}, read from the header: no pixel is decoded.
    Only an RGB profile is kept, since the output is RGB (a CMYK or grey profile would misdescribe
    it). A PNG stores whole pixels per metre, so its dpi is within 0.0127 of the one meant: a whole
    number that close is taken (2835 px/m is 72 dpi, not 72.009). The axes are swapped where the
    EXIF orientation turns the image a quarter turn, as `load_image` does to the pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise GatysError(f"cannot read image {path}: no such file")
    try:
        with _own_limit_only(), Image.open(path) as image:
            profile, dpi = image.info.get("icc_profile"), image.info.get("dpi")
            # getexif() of a PNG without an eXIf chunk before its pixels would decode them to look further
            turned = "exif" in image.info and image.getexif().get(_ORIENTATION) in (5, 6, 7, 8)
            is_png = image.format == "PNG"
    except PermissionError as error:
        raise GatysError(f"cannot read image {path}: permission denied") from error
    except MemoryError:
        raise
    except Exception as error:
        raise GatysError(f"cannot read image {path}: {type(error).__name__}: {error}") from error
    rgb = isinstance(profile, bytes) and len(profile) >= 20 and profile[16:20] == b"RGB "
    return {"icc_profile": profile if rgb else None, "dpi": _resolution(dpi, is_png, turned)}


def _resolution(dpi, is_png: bool, turned: bool) -> tuple[float, float] | None:
    """Pillow's info["dpi"] as two positive numbers (None otherwise), PNG rounding undone, axes turned."""
    try:
        x, y = (float(value) for value in dpi)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(value) and value > 0 for value in (x, y)):
        return None
    if is_png:
        x, y = (round(value) if abs(value - round(value)) <= INCHES_PER_METRE / 2 else value for value in (x, y))
    return (y, x) if turned else (x, y)


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

def _one_image(image: torch.Tensor, what: str) -> torch.Tensor:
    """(C, H, W) of a (1, C, H, W) or (C, H, W) tensor with C = 1 or 3; ValueError otherwise."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"{what} one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (1, 3, H, W) or (1, 1, H, W), got {tuple(image.shape)}")
    return image


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W), (3, H, W), (1, 1, H, W) or (1, H, W) tensor in [0, 1] → 8-bit RGB or L."""
    image = _one_image(image, "to_pil() converts")
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


def check_bits(path: str | os.PathLike, bits: int) -> None:
    """Refuse a bit depth the output's format cannot hold, or cannot be written here, before any work."""
    image_format = output_format(path)
    if bits not in (8, 16) or isinstance(bits, bool):
        raise GatysError(f"bits per channel must be 8 or 16, got {bits!r}")
    if bits not in BIT_DEPTHS[image_format]:
        raise GatysError(f"cannot write {path} with {bits} bits per channel: {image_format} holds 8; "
                         f"use a .png or .tif output")
    if bits == 16 and image_format == "TIFF":
        _tifffile(path)


def _tifffile(path: str | os.PathLike):
    """The tifffile module, which 16-bit TIFF needs (Pillow holds no 16-bit colour image)."""
    try:
        import tifffile
    except ImportError:
        raise GatysError(f"cannot write {path} with 16 bits per channel: 16-bit TIFF needs the tifffile "
                         f"package (pip install tifffile); a 16-bit .png needs nothing more") from None
    return tifffile


def _check_directory(path: Path) -> None:
    """The output's directory must exist: we never create directories behind the user's back."""
    if not path.parent.is_dir():
        raise GatysError(f"cannot write {path}: directory {path.parent} does not exist; create it first")


def check_output_path(path: str | os.PathLike,
                      inputs: Iterable[str | os.PathLike | None] = (), bits: int = 8) -> Path:
    """Refuse an output path before any work is done; return it resolved.

    Refused: an unsupported extension, a bit depth its format cannot hold (`check_bits`), a
    missing (or non-directory) parent, an existing directory, and any path that names the same
    file as one of `inputs`, however spelled (resolved paths, symlinks, hard links via samefile).
    None entries in `inputs` are skipped.
    """
    path = Path(path)
    check_bits(path, bits)
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
               metadata: dict | None = None, quality: int = 95, *, bits: int = 8,
               icc_profile: bytes | None = None, dpi: tuple[float, float] | None = None) -> Path:
    """Write an image atomically; the format follows the extension (.png, .jpg/.jpeg, .webp, .tif/.tiff).

    `metadata` (JSON-serialisable; other values are written with str()) goes into a PNG text
    chunk keyed "gatys", a TIFF ImageDescription, or the EXIF UserComment for JPEG and WebP;
    `read_metadata` reads it back. `quality` applies to JPEG and WebP. `bits` is 8 or 16 per
    channel (16: PNG and TIFF only, round(x·65535) of the image in [0, 1]). `icc_profile` (bytes)
    and `dpi` (x, y) are written where the format has room: dpi everywhere but WebP. The file
    appears complete or not at all: an existing file is replaced only once the new one is fully
    written. Returns the path.
    """
    path = Path(path)
    write_atomically(path, _encoder(image, path, metadata, quality, bits, icc_profile, dpi))
    return path


def save_image_digested(image: torch.Tensor | Image.Image, path: str | os.PathLike,
                        metadata: dict | None = None, *, bits: int = 8, icc_profile: bytes | None = None,
                        dpi: tuple[float, float] | None = None) -> str:
    """save_image, returning the SHA-256 of the bytes this call wrote (for a manifest to vouch for)."""
    path = Path(path)
    return write_atomically(path, _encoder(image, path, metadata, 95, bits, icc_profile, dpi))


def print_record(path: str | os.PathLike, bits: int = 8, icc_profile: bytes | None = None,
                 dpi: tuple[float, float] | None = None) -> dict:
    """What `save_image` with these arguments puts in the file for print, as a manifest records it:
    the format, bits per channel, the ICC profile's SHA-256 and the dpi (None where not written)."""
    image_format = output_format(path)
    return {"format": image_format, "bits": bits,
            "icc_profile": hashlib.sha256(icc_profile).hexdigest() if icc_profile else None,
            "dpi": [_number(value) for value in dpi] if dpi and image_format in CARRIES_DPI else None}


def _number(value: float) -> int | float:
    """300.0 → 300: a whole dpi reads as one in JSON."""
    return int(value) if float(value).is_integer() else float(value)


def _encoder(image: torch.Tensor | Image.Image, path: Path, metadata: dict | None, quality: int, bits: int,
             icc_profile: bytes | None, dpi: tuple[float, float] | None) -> Callable[[BinaryIO], object]:
    """Check the arguments, then return what writes the file to a stream (for write_atomically)."""
    image_format = output_format(path)
    check_bits(path, bits)
    if not 1 <= quality <= 100:
        raise GatysError(f"image quality must be between 1 and 100, got {quality}")
    if icc_profile is not None and not isinstance(icc_profile, bytes):
        raise GatysError(f"an ICC profile must be bytes, got {type(icc_profile).__name__}")
    if dpi is not None and _resolution(dpi, False, False) is None:
        raise GatysError(f"dpi must be two positive numbers (x, y), got {dpi!r}")
    _check_directory(path)
    dpi = _resolution(dpi, False, False) if image_format in CARRIES_DPI else None
    if bits == 16:
        samples = _sixteen_bits(image)
        text = None if metadata is None else _json(metadata)
        if image_format == "PNG":
            return lambda stream: write_png16(stream, samples, METADATA_KEY, text, icc_profile, dpi)
        tifffile = _tifffile(path)
        return lambda stream: _write_tiff16(tifffile, stream, samples, text, icc_profile, dpi)
    picture = _writable(image, image_format)
    options = _save_options(image_format, metadata, quality, icc_profile, dpi)
    return lambda stream: picture.save(stream, format=image_format, **options)


def _writable(image: torch.Tensor | Image.Image, image_format: str) -> Image.Image:
    """A PIL image in a mode the format's writer accepts (others normalised to RGB on white)."""
    if isinstance(image, torch.Tensor):
        return to_pil(image)
    if image.mode in _WRITABLE_MODES[image_format]:
        return image
    return to_pil(from_pil(image))


def _json(metadata: dict) -> str:
    return json.dumps(metadata, sort_keys=True, default=str)  # ASCII: fits a tEXt chunk and a TIFF tag


def _save_options(image_format: str, metadata: dict | None, quality: int, icc_profile: bytes | None = None,
                  dpi: tuple[float, float] | None = None) -> dict:
    """Pillow save keywords: the metadata in the right container, the quality, the profile and dpi."""
    options: dict = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    if image_format == "TIFF":  # lossless either way; deflate where Pillow has libtiff for it
        options["compression"] = "tiff_deflate" if features.check("libtiff") else "raw"
    if icc_profile is not None:  # left out otherwise: Pillow then keeps a PIL image's own profile
        options["icc_profile"] = icc_profile
    if dpi is not None:
        options["dpi"] = dpi
    if metadata is None:
        return options
    text = _json(metadata)
    if image_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(METADATA_KEY, text)
        options["pnginfo"] = info
    elif image_format == "TIFF":
        options["description"] = _TIFF_PREFIX + text
    else:
        exif = Image.Exif()
        # the Exif sub-IFD as a whole dict: Pillow < 11.1 drops entries set through get_ifd()
        exif[_EXIF_IFD] = {_USER_COMMENT: _ASCII_PREFIX + text.encode("ascii")}
        options["exif"] = exif
    return options


def _sixteen_bits(image: torch.Tensor | Image.Image) -> np.ndarray:
    """(H, W, 3) uint16, or (H, W, 1) for a greyscale tensor: round(x·65535) of the image clipped to [0, 1]."""
    tensor = _one_image(from_pil(image) if isinstance(image, Image.Image) else image, "save_image() writes")
    # in float64, so that the product is exact and rounds as round(x·65535) does
    values = tensor.detach().to("cpu", torch.float64).clamp(0.0, 1.0).mul(65535.0).round()
    return np.ascontiguousarray(values.to(torch.int32).permute(1, 2, 0).numpy().astype(np.uint16))


def _write_tiff16(tifffile, stream: BinaryIO, samples: np.ndarray, text: str | None, icc_profile: bytes | None,
                  dpi: tuple[float, float] | None) -> None:
    """A 16-bit RGB (or grey) TIFF by tifffile: deflate with horizontal prediction, the profile, the dpi
    (in inches) and the metadata in ImageDescription. Written to memory first: tifffile wants a
    named file, and a stream from a file descriptor is named by a number."""
    rgb, encoded = samples.shape[2] == 3, io.BytesIO()
    tifffile.imwrite(encoded, samples if rgb else samples[..., 0], photometric="rgb" if rgb else "minisblack",
                     compression="zlib", predictor=True, iccprofile=icc_profile, resolution=dpi,
                     description=None if text is None else _TIFF_PREFIX + text, metadata=None, software="gatys")
    stream.write(encoded.getbuffer())


def read_metadata(path: str | os.PathLike) -> dict | None:
    """The settings `save_image` stored with an image (PNG text chunk, TIFF ImageDescription or EXIF UserComment).

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
    """The raw JSON text in a PNG "gatys" chunk, a gatys-written TIFF description or EXIF UserComment."""
    if image.format == "PNG":
        image.load()  # text chunks after the image data are read only on load
        return image.text.get(METADATA_KEY)
    if image.format == "TIFF":
        description = image.tag_v2.get(270)  # ImageDescription
        found = isinstance(description, str) and description.startswith(_TIFF_PREFIX)
        return description[len(_TIFF_PREFIX):] if found else None
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, bytes) and comment.startswith(_ASCII_PREFIX):
        return comment[len(_ASCII_PREFIX):].decode("ascii", errors="replace")
    return None
