"""What the CPU's kernel class and the thread count do to a picture: rounding, or more?

`Job.id` leaves out which CPU ran a job (docs/reliability.md, "What the id leaves out"). This
measures that choice: one float32 transfer (chelsea × starry night, 128 px, 60 L-BFGS
evaluations, one scale) run in a fresh interpreter per case, with ATen's and oneDNN's kernels
limited to lower instruction sets and with 1 or 2 threads, each compared with the first case
by the relative difference of the final objective and the mean and largest 8-bit pixel
difference. A case this CPU cannot run (a higher ISA than it has) just runs its best.

    python -m benchmarks.kernel_classes
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from .measure import ROOT

CASES = {
    "as is, 1 thread": {"OMP_NUM_THREADS": "1"},
    "as is, 2 threads": {"OMP_NUM_THREADS": "2"},
    "ATen without vectors": {"OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default"},
    "oneDNN at SSE4.1": {"OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "oneDNN at AVX2": {"OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}

_RUN = """
import json, sys, numpy as np, torch, gatys
from gatys.images import load_image
content, style = (load_image(f"{sys.argv[1]}/examples/images/{name}") for name in ("chelsea.png", "starry_night.jpg"))
transfer = gatys.Transfer(size=128, scales=(128,), iterations=60, precision="fp32", device="cpu", tolerance=0.0)
result = transfer.run(content, style)
pixels = (result.image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
print(json.dumps({"objective": result.final_losses["total"], "pixels": pixels.tobytes().hex(), "shape": pixels.shape,
                  "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def run(environment: dict) -> dict:
    output = subprocess.run([sys.executable, "-c", _RUN, str(ROOT)], env={**os.environ, **environment},
                            capture_output=True, text=True, check=True).stdout
    record = json.loads(output.strip().splitlines()[-1])
    record["pixels"] = np.frombuffer(bytes.fromhex(record["pixels"]), np.uint8).reshape(record["shape"])
    return record


def main() -> None:
    results = {name: run(environment) for name, environment in CASES.items()}
    first = next(iter(results.values()))
    print("| case | ATen capability | objective | vs first | mean pixel difference | largest |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, record in results.items():
        difference = np.abs(record["pixels"].astype(int) - first["pixels"].astype(int))
        relative = (record["objective"] - first["objective"]) / first["objective"]
        print(f"| {name} | {record['capability']} | {record['objective']:.5g} | {relative:+.2e} | "
              f"{difference.mean():.3f} | {difference.max()} |")


if __name__ == "__main__":
    main()
