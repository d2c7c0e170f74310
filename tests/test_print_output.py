"""Print output: 16 bits per channel (PNG, TIFF), the content's ICC profile and dpi carried to the
picture, and the manifest's "print" entry that says what the file holds."""
from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from gatys import Job, TransferConfig, run_job
from gatys.errors import GatysError
from gatys.images import (check_output_path, load_image, print_info, print_record, read_metadata, save_image,
                          save_image_digested, to_pil)

TINY = TransferConfig(size=32, iterations=3, precision="fp32", device="cpu")
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _levels(image: torch.Tensor) -> np.ndarray:
    """What a 16-bit file must hold: round(x·65535), (H, W, C)."""
    return np.round(image[0].permute(1, 2, 0).double().numpy() * 65535).astype(np.uint16)


def _gradient(height: int = 6, width: int = 700) -> torch.Tensor:
    """Ramps finer than 8 bits (700 levels across) in red, the reverse in green, noise in blue."""
    ramp = torch.linspace(0, 1, width).expand(height, width)
    noise = torch.rand(height, width, generator=torch.Generator().manual_seed(0))
    return torch.stack([ramp, 1 - ramp, noise]).unsqueeze(0).contiguous()


def _png_chunks(path) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, each CRC checked: read here, not by the writer's code."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body, crc = data[at + 8:at + 8 + length], struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def _png_samples(path) -> np.ndarray:
    """The samples of a 16-bit PNG, (H, W, C) uint16: inflate, undo each row's filter (PNG spec, §9)."""
    chunks = _png_chunks(path)
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert depth == 16
    channels = {0: 1, 2: 3}[colour]
    step, stride = 2 * channels, 2 * channels * width
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows, above = [], [0] * stride
    for y in range(height):
        kind, line = raw[y * (stride + 1)], list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - step] if i >= step else 0
            b, c = above[i], (above[i - step] if i >= step else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        above = line
    return np.frombuffer(bytes(sum(rows, [])), dtype=">u2").reshape(height, width, channels).astype(np.uint16)


@pytest.fixture
def carrying_content(content_path, tmp_path):
    """The conftest content as a PNG and as a JPEG with an sRGB ICC profile and 300 dpi."""
    with Image.open(content_path) as image:
        pixels = image.convert("RGB")
    png, jpeg = tmp_path / "content.png", tmp_path / "content.jpg"
    pixels.save(png, icc_profile=SRGB, dpi=(300, 300))
    pixels.save(jpeg, icc_profile=SRGB, dpi=(300, 300), quality=95)
    return {"png": png, "jpeg": jpeg}


# ---------------------------------------------------------------------------- 16 bits

def test_16_bit_png_keeps_every_level(tmp_path):
    image = _gradient()
    path = save_image(image, tmp_path / "out.png", metadata={"seed": 3}, bits=16)
    samples = _png_samples(path)
    assert samples.shape == (6, 700, 3)
    assert np.array_equal(samples, _levels(image))
    assert len(np.unique(samples[..., 0])) > 256  # finer than 8 bits could hold
    assert read_metadata(path) == {"seed": 3}
    with Image.open(path) as opened:  # Pillow reads it (as 8 bits): a well-formed PNG
        assert opened.format == "PNG" and opened.size == (700, 6)
        opened.load()


def test_16_bit_png_of_one_pixel_and_of_greyscale(tmp_path):
    pixel = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)
    assert _png_samples(save_image(pixel, tmp_path / "pixel.png", bits=16)).tolist() == [[[0, 32768, 65535]]]
    grey = torch.rand(1, 1, 5, 9, generator=torch.Generator().manual_seed(1))
    samples = _png_samples(save_image(grey, tmp_path / "grey.png", bits=16))
    assert samples.shape == (5, 9, 1) and np.array_equal(samples, _levels(grey))


def test_16_bit_png_of_a_tall_image_crosses_the_row_blocks(tmp_path):
    # the encoder filters about 1 MiB of samples at a time (249 rows of 700 here): a block boundary
    # must not change a row. Pillow decodes it (the bytes unfiltered in C) and keeps each high byte.
    tall = torch.rand(1, 3, 300, 700, generator=torch.Generator().manual_seed(2))
    path = save_image(tall, tmp_path / "tall.png", bits=16)
    with Image.open(path) as opened:
        assert np.array_equal(np.asarray(opened), (_levels(tall) >> 8).astype(np.uint8))


def test_8_bits_stays_the_default(tmp_path):
    image = torch.randint(0, 256, (1, 3, 5, 7), generator=torch.Generator().manual_seed(0)).float() / 255
    default = save_image(image, tmp_path / "default.png", metadata={"a": 1})
    explicit = save_image(image, tmp_path / "explicit.png", metadata={"a": 1}, bits=8)
    assert default.read_bytes() == explicit.read_bytes()
    assert struct.unpack(">B", _png_chunks(default)[0][1][8:9]) == (8,)
    assert torch.equal(load_image(default), image)
    reference = tmp_path / "pillow.png"
    to_pil(image).save(reference)
    assert np.array_equal(np.asarray(Image.open(default)), np.asarray(Image.open(reference)))


@pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
def test_16_bits_is_refused_where_the_format_holds_8(tmp_path, name):
    with pytest.raises(GatysError, match="holds 8; use a .png or .tif"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / name, bits=16)
    with pytest.raises(GatysError, match="holds 8"):
        check_output_path(tmp_path / name, [], bits=16)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("bits", [12, 32, True])
def test_only_8_or_16_bits(tmp_path, bits):
    with pytest.raises(GatysError, match="must be 8 or 16"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.png", bits=bits)


# ---------------------------------------------------------------------------- TIFF

def test_8_bit_tiff_round_trip(tmp_path):
    image = torch.randint(0, 256, (1, 3, 6, 9), generator=torch.Generator().manual_seed(0)).float() / 255
    path = save_image(image, tmp_path / "out.tif", metadata={"seed": 4}, icc_profile=SRGB, dpi=(300, 300))
    with Image.open(path) as opened:
        assert opened.format == "TIFF" and opened.mode == "RGB"
        assert opened.info["icc_profile"] == SRGB
    assert torch.equal(load_image(path), image)  # lossless
    assert read_metadata(path) == {"seed": 4}
    assert print_info(path) == {"icc_profile": SRGB, "dpi": (300, 300)}
    assert read_metadata(save_image(image, tmp_path / "plain.tiff")) is None


def test_16_bit_tiff_round_trip(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    image = _gradient()
    path = save_image(image, tmp_path / "out.tiff", metadata={"seed": 5}, bits=16, icc_profile=SRGB, dpi=(300, 150))
    samples = tifffile.imread(path)
    assert samples.dtype == np.uint16 and np.array_equal(samples, _levels(image))
    assert len(np.unique(samples[..., 0])) > 256
    assert read_metadata(path) == {"seed": 5}
    assert print_info(path) == {"icc_profile": SRGB, "dpi": (300, 150)}


def test_16_bit_tiff_without_tifffile_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import tifffile now raises ImportError
    with pytest.raises(GatysError, match=r"needs the tifffile package \(pip install tifffile\)"):
        check_output_path(tmp_path / "out.tif", [], bits=16)
    with pytest.raises(GatysError, match="tifffile"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.tif", bits=16)
    assert save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.tif").exists()  # 8 bits needs only Pillow


def test_a_foreign_tiff_description_is_not_our_metadata(tmp_path):
    path = tmp_path / "other.tif"
    Image.new("RGB", (2, 2)).save(path, description='{"shape": [2, 2, 3]}')  # as tifffile describes its own
    assert read_metadata(path) is None


# ---------------------------------------------------------------------------- ICC profile and dpi

@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_print_info_reads_the_profile_and_dpi(carrying_content, kind):
    assert print_info(carrying_content[kind]) == {"icc_profile": SRGB, "dpi": (300, 300)}


@pytest.mark.parametrize("dpi", [(72, 72), (300, 96), (1200, 1)])
def test_a_png_dpi_is_the_whole_number_it_was_written_as(tmp_path, dpi):
    # pHYs holds whole pixels per metre: 72 dpi is stored as 2835 px/m, which Pillow reads as 72.009
    path = tmp_path / "dpi.png"
    Image.new("RGB", (2, 2)).save(path, dpi=dpi)
    assert print_info(path)["dpi"] == dpi


def test_a_png_dpi_that_was_not_whole_stays_as_stored(tmp_path):
    path = tmp_path / "dpi.png"
    Image.new("RGB", (2, 2)).save(path, dpi=(150.5, 150.5))  # 5925 px/m: 150.495 dpi
    x, y = print_info(path)["dpi"]
    assert x == y == pytest.approx(150.5, abs=0.0127) and x != 150.5 and x != 150


def test_print_info_without_either(tmp_path, content_path):
    assert print_info(content_path) == {"icc_profile": None, "dpi": None}


def test_print_info_drops_a_profile_that_is_not_rgb(tmp_path):
    path = tmp_path / "lab.png"
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert lab[16:20] != b"RGB "
    Image.new("RGB", (2, 2)).save(path, icc_profile=lab, dpi=(200, 200))
    assert print_info(path) == {"icc_profile": None, "dpi": (200, 200)}


def test_print_info_turns_the_dpi_with_the_exif_orientation(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn: load_image swaps width and height
    Image.new("RGB", (4, 2)).save(path, dpi=(300, 100), exif=exif)
    assert load_image(path).shape[-2:] == (4, 2)
    assert print_info(path)["dpi"] == (100, 300)


def test_print_info_of_a_missing_or_broken_file(tmp_path):
    with pytest.raises(GatysError, match="no such file"):
        print_info(tmp_path / "missing.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(GatysError, match="cannot read image"):
        print_info(broken)


@pytest.mark.parametrize("name,bits", [("out.png", 8), ("out.png", 16), ("out.jpg", 8), ("out.tif", 8),
                                       ("out.tif", 16)])
@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_the_content_profile_and_dpi_reach_the_output(carrying_content, tmp_path, name, bits, kind):
    if name.endswith(".tif") and bits == 16:
        pytest.importorskip("tifffile")
    carried = print_info(carrying_content[kind])
    path = save_image(load_image(carrying_content[kind]), tmp_path / name, metadata={"job": "x"}, bits=bits,
                      **carried)
    with Image.open(path) as opened:
        assert opened.info["icc_profile"] == SRGB
        assert opened.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert print_info(path) == {"icc_profile": SRGB, "dpi": (300, 300)}
    assert read_metadata(path) == {"job": "x"}


def test_webp_carries_the_profile_but_has_no_dpi(tmp_path):
    path = save_image(torch.rand(1, 3, 8, 8), tmp_path / "out.webp", icc_profile=SRGB, dpi=(300, 300))
    with Image.open(path) as opened:
        assert opened.info["icc_profile"] == SRGB
    assert print_record(path, 8, SRGB, (300, 300))["dpi"] is None


def test_bad_profile_or_dpi_is_refused(tmp_path):
    with pytest.raises(GatysError, match="ICC profile must be bytes"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.png", icc_profile="sRGB")
    with pytest.raises(GatysError, match="dpi must be two positive numbers"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.png", dpi=(300, 0))
    assert not (tmp_path / "out.png").exists()


def test_print_record_says_what_the_file_holds(tmp_path):
    assert print_record(tmp_path / "a.png") == {"format": "PNG", "bits": 8, "icc_profile": None, "dpi": None}
    assert print_record(tmp_path / "a.tiff", 16, SRGB, (300.0, 299.5)) == {
        "format": "TIFF", "bits": 16, "icc_profile": hashlib.sha256(SRGB).hexdigest(), "dpi": [300, 299.5]}


def test_the_digest_is_of_the_16_bit_file(tmp_path):
    digest = save_image_digested(_gradient(), tmp_path / "out.png", bits=16, icc_profile=SRGB, dpi=(300, 300))
    assert digest == hashlib.sha256((tmp_path / "out.png").read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- a job

def test_a_16_bit_job_carries_the_profile_and_dpi_and_says_so(transfer, carrying_content, style_path, tmp_path):
    out = tmp_path / "print.png"
    job = Job(carrying_content["png"], [style_path], TINY, out)
    outcome = run_job(transfer, job, bits=16)
    assert outcome.status == "done", outcome.error
    samples = _png_samples(out)
    assert samples.shape == (24, 32, 3) and np.array_equal(samples, _levels(outcome.result.image.cpu()))
    assert print_info(out) == {"icc_profile": SRGB, "dpi": (300, 300)}
    manifest = json.loads((tmp_path / "print.json").read_text())
    assert manifest["print"] == {"format": "PNG", "bits": 16, "icc_profile": hashlib.sha256(SRGB).hexdigest(),
                                 "dpi": [300, 300]}
    assert manifest["image"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert read_metadata(out)["job"] == manifest["job"]["id"] == job.id  # bits are not in the id


def test_an_8_bit_job_of_a_plain_content_records_nothing_carried(transfer, content_path, style_path, tmp_path):
    out = tmp_path / "out.tif"
    assert run_job(transfer, Job(content_path, [style_path], TINY, out)).status == "done"
    manifest = json.loads((tmp_path / "out.json").read_text())
    assert manifest["print"] == {"format": "TIFF", "bits": 8, "icc_profile": None, "dpi": None}
    assert read_metadata(out)["job"] == manifest["job"]["id"]


def test_a_16_bit_jpeg_job_fails_before_it_runs(transfer, content_path, style_path, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "run_batch", lambda *args, **kwargs: pytest.fail("the transfer ran"))
    out = tmp_path / "out.jpg"
    outcome = run_job(transfer, Job(content_path, [style_path], TINY, out), bits=16, record_errors=False)
    assert outcome.status == "failed" and "holds 8" in outcome.error
    assert not out.exists()
