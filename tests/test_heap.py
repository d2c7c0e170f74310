"""gatys.fast.heap: on glibc, a CPU run keeps freed feature maps mapped, so the next evaluation does not page-fault them in."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from gatys.fast.heap import SWITCH

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the mmap and trim thresholds are glibc's")

# Page faults of each of 8 evaluations of conv1_1 (+ ReLU, forward and input gradient) on a
# 341×512 image, whose 64 maps (45 MB) are over glibc's 32 MiB adaptive mmap ceiling, in a
# fresh interpreter, with or without the engine's CPU configuration first.
SCRIPT = """
import resource, sys, torch
from torch import nn
from gatys.fast.cpu_layers import conv_relu
from gatys.device import configure
if sys.argv[1] == "configured":
    configure(torch.device("cpu"))
torch.manual_seed(0)
conv = nn.Conv2d(3, 64, 3, padding=1).requires_grad_(False)
image = torch.rand(1, 3, 341, 512).contiguous(memory_format=torch.channels_last)
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = image.clone().requires_grad_()
    conv_relu(conv, x).square().sum().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""
MAP_PAGES = 64 * 341 * 512 * 4 // 4096


def _faults_in_last_evaluations(mode: str, last: int = 3, switch: str | None = None) -> int:
    env = {key: value for key, value in os.environ.items() if key != SWITCH}
    if switch is not None:
        env[SWITCH] = switch
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, env=env)
    return sum(int(count) for count in result.stdout.split()[-last:])


def test_evaluations_after_the_first_few_reuse_their_pages():
    """glibc's heap takes a few evaluations to hold blocks that fit the next request (torch asks for
    64-byte aligned memory); from then on an evaluation faults in almost nothing."""
    plain = _faults_in_last_evaluations("plain")
    configured = _faults_in_last_evaluations("configured")
    assert plain > 3 * 2 * MAP_PAGES, "the premise: without it, every evaluation faults its maps in (forward and backward)"
    assert configured < 0.2 * plain


def test_the_environment_can_turn_it_off():
    """GATYS_KEEP_FREED_MEMORY=0: glibc's own behaviour, every evaluation faults its maps in again."""
    assert _faults_in_last_evaluations("configured", switch="0") > 3 * 2 * MAP_PAGES


def test_glibc_accepts_both_thresholds():
    from gatys.fast.heap import keep_freed_memory

    assert keep_freed_memory() is True
