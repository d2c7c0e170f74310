"""Golden runs: a short transfer per precision whose numbers are kept in tests/golden/, so that a
change of the engine's numbers fails a test (tests/test_golden.py) until NUMERIC_CONTRACT is raised.

    python -m tests.golden --write      # after raising NUMERIC_CONTRACT in gatys/jobs.py

The run covers what an engine change could move without changing a job's settings: the noise
init and the sampling losses' seed streams (sliced Wasserstein's projections), two scales (the
upsampling between them), the content, style and TV terms and L-BFGS. Images are 32 px patterns
made here, so the goldens do not depend on any file but the bundled weights.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
from pathlib import Path

import numpy as np
import torch

import gatys
from gatys.jobs import NUMERIC_CONTRACT

GOLDEN = Path(__file__).parent / "golden"
PRECISIONS = ("fp32", "bf16")

# What a golden run may differ by on another kernel class or thread count (rounding): measured in
# docs/reliability.md ("What the id leaves out"), with a margin; a seed stream's change moves it far more.
# bf16 kernels of different CPU classes round differently enough to move even this short run by 10 %
# (oneDNN's native bf16 against its AVX-512 emulation), so bf16 keeps one golden per kernel class.
TOLERANCE = {"trace": 2e-3, "pixels": 0.3}


def golden_path(precision: str) -> Path:
    """tests/golden/fp32.json, or bf16-<kernel class>.json: amx, avx512-bf16 or emulated."""
    if precision == "fp32":
        return GOLDEN / "fp32.json"
    from gatys.device import _cpu_flags
    flags = _cpu_flags()
    kernels = "amx" if "amx_bf16" in flags else "avx512-bf16" if "avx512_bf16" in flags else "emulated"
    return GOLDEN / f"bf16-{kernels}.json"


def _pattern(height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth colourful image in [0, 1], 1×3×H×W, from a fixed formula (no random source)."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * ((2 + seed + i) * x + (i + 1) * y) + i * seed) for i in range(3)]
    return torch.from_numpy(np.stack(channels)).float().unsqueeze(0)


def run(precision: str) -> dict:
    """The golden run in `precision` on the CPU: its loss trace, final image (uint8) and the image's digest."""
    result = gatys.Transfer(size=32, scales=(24, 32), iterations=(4, 4), init="noise", seed=7, coarse_min_positions=1,
                            style_losses=("gram", "sliced-wasserstein"), precision=precision,
                            device="cpu").run(_pattern(24, 32, 1), _pattern(32, 32, 2))
    trace = [float(value) for scale in result.trace for value in scale["losses"]["total"]]
    pixels = (result.image.detach().clamp(0, 1) * 255).round().to(torch.uint8).squeeze(0).permute(1, 2, 0)
    pixels = pixels.contiguous().numpy()
    return {"trace": trace, "pixels": pixels, "sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}


def load(precision: str) -> dict:
    record = json.loads(golden_path(precision).read_text())
    record["pixels"] = np.frombuffer(bytes.fromhex(record["pixels"]), dtype=np.uint8).reshape(record["shape"])
    return record


def differences(ran: dict, golden: dict) -> tuple[float, float]:
    """(largest relative difference of the loss traces, mean absolute pixel difference in 0-255 levels)."""
    if len(ran["trace"]) != len(golden["trace"]) or ran["pixels"].shape != golden["pixels"].shape:
        return float("inf"), float("inf")
    a, b = np.asarray(ran["trace"]), np.asarray(golden["trace"])
    trace = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
    pixels = float(np.mean(np.abs(ran["pixels"].astype(np.int16) - golden["pixels"].astype(np.int16))))
    return trace, pixels


def write(precision: str) -> Path:
    ran = run(precision)
    GOLDEN.mkdir(exist_ok=True)
    path = golden_path(precision)
    path.write_text(json.dumps({
        "numeric_contract": NUMERIC_CONTRACT, "precision": precision, "trace": ran["trace"], "sha256": ran["sha256"],
        "shape": list(ran["pixels"].shape), "pixels": ran["pixels"].tobytes().hex(),
        "written_on": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                       "cpu_capability": torch.backends.cpu.get_cpu_capability()},
    }, indent=1) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the goldens of this engine (after raising NUMERIC_CONTRACT)")
    parser.add_argument("--precision", choices=PRECISIONS, action="append", help="only these (default: every one this CPU runs)")
    arguments = parser.parse_args()
    from gatys.device import cpu_can_run_bf16
    chosen = arguments.precision or [p for p in PRECISIONS if p == "fp32" or cpu_can_run_bf16()]
    for precision in chosen:
        if arguments.write:
            print(f"wrote {write(precision)}")
        else:
            trace, pixels = differences(run(precision), load(precision))
            print(f"{precision}: trace differs by {trace:.2e} (relative), pixels by {pixels:.3f} levels (mean)")


if __name__ == "__main__":
    main()
