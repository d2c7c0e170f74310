"""A 16-bit PNG writer: Pillow holds no 16-bit colour image, and nothing already installed writes one.

numpy does the filtering and zlib the compression, in blocks of about 1 MiB of samples, so the extra
memory stays bounded whatever the picture's size.
"""
from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
INCHES_PER_METRE = 0.0254  # a PNG's pHYs chunk counts pixels per metre


def write_png16(stream: BinaryIO, samples: np.ndarray, key: str, text: str | None, icc_profile: bytes | None,
                dpi: tuple[float, float] | None) -> None:
    """A 16-bit RGB (or grey) PNG: IHDR, iCCP, pHYs, the tEXt `key`, the samples big-endian and
    Paeth-filtered (the smallest of PNG's five filters on photographs: 23% below none) in IDAT, IEND."""
    height, width, channels = samples.shape
    stream.write(SIGNATURE)
    _png_chunk(stream, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2 if channels == 3 else 0, 0, 0, 0))
    if icc_profile:
        _png_chunk(stream, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile))
    if dpi:
        _png_chunk(stream, b"pHYs", struct.pack(">IIB", *(int(value / INCHES_PER_METRE + 0.5) for value in dpi), 1))
    if text is not None:
        _png_chunk(stream, b"tEXt", key.encode("latin-1") + b"\x00" + text.encode("latin-1"))
    rows = samples.astype(">u2").reshape(height, width * channels).view(np.uint8)
    block = max(1, (1 << 20) // rows.shape[1])  # about 1 MiB of samples per step: bounded extra memory
    compressor, above = zlib.compressobj(6), np.zeros(rows.shape[1], np.uint8)
    for start in range(0, height, block):
        data = compressor.compress(_paeth(rows[start:start + block], above, 2 * channels))
        above = rows[min(start + block, height) - 1]
        if data:
            _png_chunk(stream, b"IDAT", data)
    _png_chunk(stream, b"IDAT", compressor.flush())
    _png_chunk(stream, b"IEND", b"")


def _png_chunk(stream: BinaryIO, kind: bytes, data: bytes) -> None:
    """One PNG chunk: length, type, data and the CRC-32 of type and data."""
    stream.write(struct.pack(">I", len(data)) + kind)
    stream.write(data)
    stream.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def _paeth(rows: np.ndarray, above: np.ndarray, step: int) -> bytes:
    """PNG filter type 4 of uint8 `rows` (bytes of `step`-byte pixels; `above`: the row before the first),
    each row led by its filter-type byte. The encoder predicts from unfiltered bytes, so it vectorises."""
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])  # above
    a, c = np.zeros_like(x), np.zeros_like(x)  # left and above-left; zero left of the first pixel
    a[:, step:], c[:, step:] = x[:, :-step], b[:, :-step]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    predicted = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    filtered = ((x - predicted) & 0xFF).astype(np.uint8)
    return np.concatenate([np.full((len(rows), 1), 4, np.uint8), filtered], axis=1).tobytes()
