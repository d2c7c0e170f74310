"""Device and precision choice: detect what is fast, never guess.

Precision bf16 runs the network in bfloat16: its weights are stored in bf16
(Transfer.network) and it computes in its weights' dtype, inside an autocast region that
then has nothing left to cast. The losses are always reduced in float32. Two questions
are kept apart: whether a device can run bf16 at all (on the CPU, oneDNN's bf16
convolutions need AVX-512 BW/VL/DQ or AVX-NE-CONVERT; asking for bf16 elsewhere is a
GatysError, not a crash inside oneDNN), and whether bf16 is fast there (CUDA GPUs that
support bf16; CPUs with AMX or AVX-512-BF16), which is where 'auto' picks it.
"""
from __future__ import annotations

import contextlib
import platform

import torch

from .errors import GatysError
from .fast.heap import keep_freed_memory


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → cuda if present, else mps, else cpu; explicit names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GatysError(f"device must be auto, cpu, cuda, cuda:N or mps, not {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GatysError(f"device {name!r} asked for, but torch sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GatysError(f"device {name!r} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GatysError("device 'mps' asked for, but this machine has no usable Apple GPU")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise GatysError(f"device must be auto, cpu, cuda, cuda:N or mps, not {name!r}")
    return device


CPU_BF16_NEEDS = "AVX-512 BW/VL/DQ or AVX-NE-CONVERT"  # what oneDNN's bf16 convolutions need on x86


def cpu_can_run_bf16() -> bool:
    """True where oneDNN runs bf16 convolutions on this CPU (torch's own check; /proc/cpuinfo as fallback).

    Without it the CPU path's bf16 convolutions stop with a RuntimeError inside oneDNN;
    resolve_precision refuses bf16 there instead.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None:
        try:
            return bool(check())
        except RuntimeError:
            pass
    flags = _cpu_flags()
    return {"avx512bw", "avx512vl", "avx512dq"} <= flags or "avx_ne_convert" in flags


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles or AVX-512-BF16 (torch's own checks, /proc/cpuinfo as fallback)."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, probe, None)
        if check is not None:
            try:
                if check():
                    return True
            except RuntimeError:
                pass
    return not {"amx_bf16", "avx512_bf16"}.isdisjoint(_cpu_flags())


def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux names them in /proc/cpuinfo; empty elsewhere."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def supported_precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions this device runs: ('fp32', 'bf16') or ('fp32',)."""
    if device.type == "cpu":
        bf16 = cpu_can_run_bf16()
    elif device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
    else:
        bf16 = False
    return ("fp32", "bf16") if bf16 else ("fp32",)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' → 'bf16' where bf16 is fast on this device, else 'fp32'; bf16 where it cannot run → GatysError."""
    if precision == "bf16":
        if device.type == "mps":
            raise GatysError("precision bf16 is not supported on mps; use fp32")
        if device.type == "cpu" and not cpu_can_run_bf16():
            raise GatysError(f"precision bf16 needs a CPU with {CPU_BF16_NEEDS} (oneDNN's bf16 convolutions), "
                             "and this one has neither; use --precision fp32")
        return precision
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() and cpu_can_run_bf16() else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast region for the network, or a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return _cpu_model() or platform.processor() or platform.machine()
    return device.type


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    except OSError:
        pass
    return None


def configure(device: torch.device) -> None:
    """Process-wide speed settings that do not change results beyond float32 rounding."""
    if device.type == "cpu":
        keep_freed_memory()  # the feature maps' pages stay mapped from one evaluation to the next
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
