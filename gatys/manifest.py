"""The JSON run manifest written beside an output: enough to reproduce and to compare runs."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from .engine import Result


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(result: Result, inputs: dict[str, Any] | None = None, output: str | Path | None = None) -> dict:
    """Versions, device, weights and their hash, settings, seed, loss trace and timings."""
    return {
        "gatys": _version("gatys"),
        "versions": {"python": platform.python_version(), "torch": _version("torch"),
                     "torchvision": _version("torchvision"), "numpy": _version("numpy"),
                     "pillow": _version("pillow"), "platform": platform.platform()},
        "command": sys.argv if inputs is not None else None,
        "output": str(output) if output is not None else None,
        "inputs": inputs or {},
        "device": result.device,
        "precision": result.precision,
        "weights": result.weights,
        "settings": result.config.as_dict(),
        "seed": result.config.seed,
        "interrupted": result.interrupted,
        "final_losses": result.final_losses,
        "timings": result.timings,
        "trace": result.trace,
    }


def manifest_path(output: str | Path) -> Path:
    """out.png → out.json."""
    return Path(output).with_suffix(".json")


def write(manifest: dict, path: str | Path) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(manifest, stream, indent=2, default=str)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
