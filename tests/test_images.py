"""gatys.images: reading every mode, resizing, atomic saving with metadata, output-path checks."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from gatys import images
from gatys.errors import GatysError
from gatys.images import (check_output_path, from_pil, load_image, read_metadata, resize,
                          save_image, scaled_size, to_pil)


def _save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


@pytest.fixture
def rgb_png(tmp_path):
    """A 6×4 RGB PNG with distinct pixel values."""
    values = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
    return _save(Image.fromarray(values, "RGB"), tmp_path / "rgb.png")


def _pixel(tensor, y=0, x=0):
    return tensor[0, :, y, x].tolist()


# ---------------------------------------------------------------------------- reading modes

def test_rgb_png_loads_exactly(rgb_png):
    tensor = load_image(rgb_png)
    expected = np.asarray(Image.open(rgb_png)).astype(np.float32) / 255
    assert tensor.shape == (1, 3, 4, 6) and tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    np.testing.assert_allclose(tensor[0].permute(1, 2, 0).numpy(), expected, atol=1e-7)


def test_greyscale_l_is_replicated(tmp_path):
    path = _save(Image.new("L", (3, 2), 51), tmp_path / "grey.png")
    tensor = load_image(path)
    assert tensor.shape == (1, 3, 2, 3)
    assert torch.allclose(tensor, torch.full_like(tensor, 0.2))


def test_la_composited_on_white(tmp_path):
    path = _save(Image.new("LA", (2, 2), (0, 51)), tmp_path / "la.png")
    tensor = load_image(path)
    assert _pixel(tensor) == pytest.approx([1 - 51 / 255] * 3, abs=1e-6)


def test_rgba_composited_on_white_exactly(tmp_path):
    path = _save(Image.new("RGBA", (2, 2), (255, 0, 0, 128)), tmp_path / "rgba.png")
    tensor = load_image(path)
    # red at alpha 128/255 over white: R = 1, G = B = 1 − 128/255 = 127/255
    assert _pixel(tensor) == pytest.approx([1.0, 127 / 255, 127 / 255], abs=1e-6)


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 255] + [255, 0, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0  # index 0 (blue) fully transparent
    path = _save(image, tmp_path / "palette.png", transparency=0)
    tensor = load_image(path)
    assert _pixel(tensor, 0, 0) == pytest.approx([1, 1, 1], abs=1e-6)  # transparent → white
    assert _pixel(tensor, 0, 1) == pytest.approx([1, 0, 0], abs=1e-6)


def test_palette_without_transparency(tmp_path):
    image = Image.new("P", (1, 1), 0)
    image.putpalette([0, 255, 0] + [0] * 765)
    tensor = load_image(_save(image, tmp_path / "palette.png"))
    assert _pixel(tensor) == pytest.approx([0, 1, 0], abs=1e-6)


def test_sixteen_bit_png_keeps_precision(tmp_path):
    values = np.array([[0, 1000], [30001, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    tensor = load_image(_save(image, tmp_path / "deep.png"))
    expected = values.astype(np.float64) / 65535
    for channel in range(3):
        np.testing.assert_allclose(tensor[0, channel].numpy(), expected, rtol=0, atol=1e-7)
    # 1000/65535 is not representable in 8 bits: the nearest 8-bit level is 4/255
    assert abs(tensor[0, 0, 0, 1].item() - 1000 / 65535) < 1e-7


def test_mode_i_and_f_tiff(tmp_path):
    integer = Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.int32))
    floating = Image.fromarray(np.array([[0.25, 0.5, 2.0]], dtype=np.float32))
    loaded_i = load_image(_save(integer, tmp_path / "i.tiff"))
    loaded_f = load_image(_save(floating, tmp_path / "f.tiff"))
    assert loaded_i[0, 0, 0].tolist() == pytest.approx([0, 1000 / 65535, 1], abs=1e-7)
    assert loaded_f[0, 1, 0].tolist() == pytest.approx([0.25, 0.5, 1.0])  # clipped to [0, 1]


def test_cmyk_converted_to_rgb(tmp_path):
    path = _save(Image.new("CMYK", (2, 2), (0, 255, 0, 0)), tmp_path / "cmyk.tiff")
    assert _pixel(load_image(path)) == pytest.approx([1, 0, 1], abs=1e-6)  # no magenta ink → magenta


def test_exif_rotated_jpeg_is_rotated(tmp_path):
    stored = np.zeros((8, 16, 3), dtype=np.uint8)  # 16 wide, 8 high
    stored[:, :4] = 255  # white on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = _save(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif, quality=100)
    tensor = load_image(path)
    assert tensor.shape == (1, 3, 16, 8)
    # after a clockwise quarter turn the stored left edge is the top edge
    assert tensor[0, :, :3].mean() > 0.9 and tensor[0, :, 5:].mean() < 0.1


def test_size_sets_longest_side(rgb_png):
    tensor = load_image(rgb_png, size=3)
    assert tensor.shape == (1, 3, 2, 3)
    assert load_image(rgb_png, size=12).shape == (1, 3, 8, 12)  # upscaling allowed


# ---------------------------------------------------------------------------- reading errors

def test_missing_file(tmp_path):
    path = tmp_path / "absent.png"
    with pytest.raises(GatysError, match="absent.png"):
        load_image(path)


def test_directory(tmp_path):
    with pytest.raises(GatysError, match="is a directory"):
        load_image(tmp_path)


@pytest.mark.parametrize("name,content", [
    ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20),
    ("notes.txt", b"not an image at all\n"),
])
def test_not_an_image(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(GatysError, match=name) as raised:
        load_image(path)
    assert "\n" not in str(raised.value)


def test_truncated_image(tmp_path):
    noise = Image.effect_noise((64, 64), 60).convert("RGB")
    whole = _save(noise, tmp_path / "whole.png").read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(GatysError, match="truncated.png"):
        load_image(path)


def test_pixel_limit(rgb_png):
    with pytest.raises(GatysError, match="limit"):
        load_image(rgb_png, max_pixels=10)
    assert load_image(rgb_png, max_pixels=24).shape == (1, 3, 4, 6)


def test_pillow_decompression_bomb_limit_and_how_to_raise_it(rgb_png, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5)  # 24 px is over twice the limit: Pillow itself refuses
    with pytest.raises(GatysError, match=r"rgb.png: 6×4 is 24 pixels, over the decompression-bomb limit of 5; "
                                         r".*GATYS_MAX_IMAGE_PIXELS=N"):
        load_image(rgb_png)
    assert load_image(rgb_png, max_pixels=10_000).shape == (1, 3, 4, 6)  # an explicit limit lifts Pillow's
    monkeypatch.setenv("GATYS_MAX_IMAGE_PIXELS", "24")
    assert load_image(rgb_png).shape == (1, 3, 4, 6)
    assert Image.MAX_IMAGE_PIXELS == 5  # restored
    monkeypatch.setenv("GATYS_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(GatysError, match="GATYS_MAX_IMAGE_PIXELS must be a number"):
        load_image(rgb_png)


# ---------------------------------------------------------------------------- resizing and tensors

@pytest.mark.parametrize("height,width,longest,expected", [
    (4, 6, 3, (2, 3)), (6, 4, 3, (3, 2)), (100, 1, 10, (10, 1)), (1, 1000, 10, (1, 10)),
    (5, 5, 7, (7, 7)),
])
def test_scaled_size(height, width, longest, expected):
    assert scaled_size(height, width, longest) == expected


def test_scaled_size_refuses_nonpositive():
    with pytest.raises(GatysError):
        scaled_size(4, 4, 0)


def test_resize_by_longest_side_and_shape():
    image = torch.rand(1, 3, 30, 60)
    small = resize(image, size=20)
    assert small.shape == (1, 3, 10, 20) and small.is_contiguous()
    assert 0 <= small.min() and small.max() <= 1
    assert resize(image, shape=(7, 9)).shape == (1, 3, 7, 9)
    assert torch.equal(resize(image), image)


def test_resize_keeps_constant_image():
    image = torch.full((1, 3, 9, 12), 0.3)
    assert torch.allclose(resize(image, size=5), image[..., :4, :5], atol=1e-6)


def test_pil_round_trip():
    tensor = torch.randint(0, 256, (1, 3, 5, 7)).float() / 255
    image = to_pil(tensor)
    assert image.mode == "RGB" and image.size == (7, 5)
    assert torch.allclose(from_pil(image), tensor, atol=1e-7)
    assert to_pil(tensor[:, :1]).mode == "L"


# ---------------------------------------------------------------------------- saving

def test_png_metadata_round_trip(tmp_path):
    settings = {"style_weight": 1e5, "layers": ["relu1_1", "relu2_1"], "path": tmp_path, "π": 3.14}
    path = save_image(torch.rand(1, 3, 4, 5), tmp_path / "out.png", metadata=settings)
    stored = read_metadata(path)
    assert stored == {"style_weight": 1e5, "layers": ["relu1_1", "relu2_1"], "path": str(tmp_path), "π": 3.14}
    assert Image.open(path).text["gatys"]


@pytest.mark.parametrize("name,format_name", [("out.jpg", "JPEG"), ("out.JPEG", "JPEG"), ("out.webp", "WEBP")])
def test_format_by_extension_with_metadata(tmp_path, name, format_name):
    tensor = torch.full((1, 3, 8, 8), 0.5)
    path = save_image(tensor, tmp_path / name, metadata={"seed": 7}, quality=90)
    with Image.open(path) as image:
        assert image.format == format_name
    assert read_metadata(path) == {"seed": 7}
    assert torch.allclose(load_image(path), tensor, atol=3 / 255)


def test_png_is_lossless_and_without_metadata(tmp_path):
    tensor = torch.randint(0, 256, (1, 3, 5, 7)).float() / 255
    path = save_image(tensor, tmp_path / "plain.png")
    assert torch.equal(load_image(path), tensor)
    assert read_metadata(path) is None


def test_save_pil_image_converted_for_jpeg(tmp_path):
    path = save_image(Image.new("RGBA", (3, 3), (0, 0, 0, 0)), tmp_path / "clear.jpg")
    assert load_image(path).min() > 0.95  # transparent → white, not black


def test_unsupported_extension(tmp_path):
    with pytest.raises(GatysError, match=r"\.png.*\.jpg.*\.webp"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.bmp")
    assert not (tmp_path / "out.bmp").exists()


def test_missing_output_directory(tmp_path):
    with pytest.raises(GatysError, match="does not exist"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "nowhere" / "out.png")
    assert not (tmp_path / "nowhere").exists()


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.png", metadata={"a": 1})
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_failed_save_keeps_old_file(tmp_path, monkeypatch):
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "out.png", metadata={"run": 1})
    before = path.read_bytes()

    def failing_save(self, stream, *args, **kwargs):
        stream.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(GatysError, match="No space left"):
        save_image(torch.ones(1, 3, 4, 4), path, metadata={"run": 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_interrupted_save_keeps_old_file(tmp_path, monkeypatch):
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "out.png")
    before = path.read_bytes()
    monkeypatch.setattr(images.os, "replace", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_image(torch.ones(1, 3, 4, 4), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_saved_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_image(torch.rand(1, 3, 2, 2), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------------------- output-path checks

def test_check_output_path_accepts_new_file(tmp_path, rgb_png):
    assert check_output_path(tmp_path / "new.png", [rgb_png]) == (tmp_path / "new.png").resolve()


def test_check_output_path_refuses_an_input(tmp_path, rgb_png, monkeypatch):
    with pytest.raises(GatysError, match="overwrite"):
        check_output_path(rgb_png, [tmp_path / "other.png", rgb_png])
    # another spelling of the same file: relative, through "..", through a symlink, a hard link
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.png").symlink_to(rgb_png)
    os.link(rgb_png, tmp_path / "hard.png")
    for spelling in ["rgb.png", "sub/../rgb.png", "./link.png", "hard.png"]:
        with pytest.raises(GatysError, match="overwrite"):
            check_output_path(spelling, [rgb_png])


def test_check_output_path_skips_none_inputs(tmp_path):
    assert check_output_path(tmp_path / "out.png", [None])


def test_check_output_path_refuses_missing_directory_and_extension(tmp_path):
    with pytest.raises(GatysError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png", [])
    with pytest.raises(GatysError, match="unsupported extension"):
        check_output_path(tmp_path / "out.gif", [])
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(GatysError, match="is a directory"):
        check_output_path(tmp_path / "folder.png", [])
