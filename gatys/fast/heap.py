"""Keep freed memory in the process, so each evaluation reuses the last one's pages.

Every evaluation allocates and frees the same feature maps. glibc's malloc hands blocks
over 32 MiB (its adaptive threshold's ceiling) to mmap and back to the kernel on free, so
each such block is page-faulted in again, zero-filled by the kernel, at every use (at 512 px
in float32 the 64-channel maps are 45 MB; docs/performance.md counts the faults and their cost).
Raising the mmap threshold and turning off heap trimming serves them from the process's
own heap instead, as jemalloc or tcmalloc would; after the first few evaluations (until
the heap holds free blocks that fit torch's 64-byte aligned requests) an evaluation
faults in almost nothing. The cost: the process keeps its peak heap until it exits, and
that peak is higher, since not every freed block fits the next request.

Only glibc has these knobs; elsewhere this does nothing. GATYS_KEEP_FREED_MEMORY=0 in the
environment turns it off (glibc's own behaviour: slower at large sizes, a lower peak), as
PYTORCH_CUDA_ALLOC_CONF tunes torch's GPU allocator.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks under 1 GiB come from the heap (a 1024 px float32 map at relu1_1 is 179 MB)
TRIM_THRESHOLD = 2**31 - 1  # the largest int: never give the heap's top back to the kernel
SWITCH = "GATYS_KEEP_FREED_MEMORY"  # "0" turns it off


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds, once per process; True where both took effect."""
    if os.environ.get(SWITCH, "1").strip() == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
