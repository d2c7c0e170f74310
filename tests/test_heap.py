"""gatys.heap: on glibc, a CPU run keeps freed feature maps mapped, so reusing one does not page-fault it back in."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the mmap and trim thresholds are glibc's")

# Faults taken by the fourth use of a 64 MiB block (over glibc's 32 MiB adaptive mmap ceiling),
# in a fresh interpreter, with or without the engine's CPU configuration first.
SCRIPT = """
import resource, sys, torch
from gatys.device import configure
if sys.argv[1] == "configured":
    configure(torch.device("cpu"))
def use(size):
    block = torch.empty(size, dtype=torch.uint8)
    block.fill_(1)
size = 64 << 20
for _ in range(3):
    use(size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
use(size)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = (64 << 20) // 4096


def _faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


def test_a_cpu_run_reuses_a_freed_large_block_without_page_faults():
    assert _faults("configured") < 0.05 * PAGES


def test_without_it_glibc_faults_the_block_back_in():
    """The premise: glibc maps a block this size fresh at every use (so the test above can fail)."""
    assert _faults("plain") > 0.9 * PAGES


def test_glibc_accepts_both_thresholds():
    from gatys.heap import keep_freed_memory

    assert keep_freed_memory() is True
