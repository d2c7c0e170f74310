"""Process-wide speed settings (gatys/device.py)."""
from __future__ import annotations

import resource

import pytest
import torch

from gatys.device import keep_freed_memory


@pytest.mark.skipif(not keep_freed_memory(), reason="needs glibc's mallopt")
def test_freed_memory_is_reused_without_page_faults():
    """Without it each 64 MiB tensor is a fresh mmap: 16,384 page faults per allocation."""
    for _ in range(2):
        torch.empty(16 * 2**20).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.empty(16 * 2**20).fill_(1.0)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 2_000
