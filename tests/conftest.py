"""Shared fixtures: tiny images made on the fly, one network per test session, and the bf16 marker."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gatys
from gatys.device import CPU_BF16_NEEDS, cpu_can_run_bf16

# For tests that run bf16 convolutions on the CPU (gatys/fast/cpu_layers.py): `from conftest import requires_cpu_bf16`,
# then `@requires_cpu_bf16` or `pytest.param(torch.bfloat16, ..., marks=requires_cpu_bf16)`.
requires_cpu_bf16 = pytest.mark.skipif(
    not cpu_can_run_bf16(), reason=f"this CPU cannot run bf16 convolutions (oneDNN needs {CPU_BF16_NEEDS})")


def _pattern(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, colourful test image (gradients plus stripes), uint8 RGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    freq = rng.uniform(2, 8, size=3)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (f * x + (i + 1) * y) + i) for i, f in enumerate(freq)]
    return (np.stack(channels, axis=-1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(_pattern(36, 48, 1)).save(folder / "content.png")
    Image.fromarray(_pattern(40, 40, 2)).save(folder / "style.png")
    Image.fromarray(_pattern(30, 44, 3)).save(folder / "style2.jpg")
    return folder


@pytest.fixture(scope="session")
def content_path(image_dir):
    return image_dir / "content.png"


@pytest.fixture(scope="session")
def style_path(image_dir):
    return image_dir / "style.png"


@pytest.fixture(scope="session")
def transfer():
    """One Transfer (and so one loaded network) for the whole session, float32 on the CPU."""
    return gatys.Transfer(size=32, iterations=5, precision="fp32", device="cpu")


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)
