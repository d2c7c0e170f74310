"""The JSON run manifest written beside an output: enough to reproduce and to compare runs."""
from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .engine import Result
from .files import write_atomically


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def build(result: Result, inputs: dict[str, Any] | None = None, output: str | Path | None = None,
          job: dict[str, Any] | None = None) -> dict:
    """Versions, device, weights and their hash, settings, seed, the job's id, loss trace and timings."""
    return {
        "gatys": _version("gatys"),
        "versions": {"python": platform.python_version(), "torch": _version("torch"),
                     "torchvision": _version("torchvision"), "numpy": _version("numpy"),
                     "pillow": _version("pillow"), "platform": platform.platform()},
        "command": sys.argv if inputs is not None else None,
        "output": str(output) if output is not None else None,
        "inputs": inputs or {},
        "job": job,
        "device": result.device,
        "precision": result.precision,
        "kernels": kernels(),
        "weights": result.weights,
        "settings": result.config.as_dict(),
        "seed": result.config.seed,
        "interrupted": result.interrupted,
        "stopped": result.stopped,
        "final_losses": result.final_losses,
        "timings": result.timings,
        "trace": result.trace,
    }


def kernels() -> dict[str, Any]:
    """The CPU kernel class and thread count that ran: not in the id, but they change the pixels a
    long run ends on (docs/reliability.md, "What the id leaves out"), so a manifest says which."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def manifest_path(output: str | Path) -> Path:
    """out.png → out.json."""
    return Path(output).with_suffix(".json")


def write(manifest: dict, path: str | Path) -> None:
    """Write the manifest as JSON, atomically."""
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    write_atomically(Path(path), lambda stream: stream.write(text.encode()))
