"""Timing and peak memory, and running one benchmark case in a fresh interpreter.

Times are wall clock (time.perf_counter), with the device synchronised before each reading
on CUDA; callers take the median after warm-up. Peak memory of a region is, on the CPU, the
process's resident-set high-water mark (VmHWM in /proc/self/status), reset at the start of the region
by writing 5 to /proc/self/clear_refs (Linux ≥ 4.0; elsewhere the mark counts from process
start and the result says so); on CUDA it is torch.cuda.max_memory_allocated.

`isolated("benchmarks.engine_speed:measure", size=256)` runs one function in a new Python
process and returns its JSON result, so no case inherits another's allocations or caches.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


class CaseFailed(RuntimeError):
    """A case run by `isolated` exited with an error (its traceback went to stderr)."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(function: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _reset_resident_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _resident_peak_bytes() -> int:
    """The process's peak RSS since the last reset: VmHWM where Linux has it, else ru_maxrss.

    ru_maxrss is no use in a child: Linux seeds it at exec with the RSS of the process that
    spawned it (the suite's parent, hundreds of MiB), and clear_refs does not reset that part.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class PeakMemory:
    """with PeakMemory(device) as memory: ...; then memory.as_dict(): start, peak and their difference."""

    def __init__(self, device: torch.device):
        self.device = device
        self.start = self.peak = 0
        self.reset = False

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            self.reset = True
        else:
            self.reset = _reset_resident_peak()
            resident = _resident_bytes()
            self.start = resident if resident is not None else _resident_peak_bytes()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _resident_peak_bytes()

    def as_dict(self) -> dict:
        kind = "cuda max_memory_allocated" if self.device.type == "cuda" else "process peak RSS (VmHWM)"
        return {"kind": kind, "start_bytes": self.start, "peak_bytes": self.peak,
                "delta_bytes": self.peak - self.start, "peak_reset_at_start": self.reset}


def isolated(target: str, **arguments) -> dict:
    """Call module:function(**arguments) in a new interpreter; its return value, through JSON.

    The child's stdout and stderr are this process's, so its progress lines show.
    """
    with tempfile.TemporaryDirectory(prefix="gatys-bench-") as folder:
        result_path = Path(folder) / "result.json"
        paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
        command = [sys.executable, "-m", "benchmarks.measure", target, json.dumps(arguments), str(result_path)]
        completed = subprocess.run(command, cwd=ROOT, env=environment)
        if completed.returncode != 0 or not result_path.exists():
            raise CaseFailed(f"{target}({arguments}) exited with status {completed.returncode}")
        return json.loads(result_path.read_text())


def _child(target: str, arguments: str, result_path: str) -> None:
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**json.loads(arguments))
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    _child(*sys.argv[1:4])
