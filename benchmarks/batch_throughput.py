"""Pictures per second for batched runs: N independent runs optimised together (Transfer.run_batch).

    python -m benchmarks.batch_throughput                          # CUDA: 512 px, batches 1, 2, 4, 8, 16
    python -m benchmarks.batch_throughput --device cpu --size 128 --batches 1,2,3

Each batch is N seeds of the default transfer of one sample pair at one scale, from noise,
for a fixed number of evaluations (no convergence stop, so every batch does the same work
per picture). Each batch size runs once untimed (warm-up: cuDNN's algorithm search, weight
packing) and then `--repeats` times; the table gives the median wall time of a batch, the
pictures per second, and the time of a batch against that of one picture (8 pictures in at
most 3× the time of one is the GPU target). Writes results/batch-<device>.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Sequence

import torch

from gatys import Transfer, TransferConfig
from gatys.device import device_name, resolve_device, resolve_precision

from . import tables
from .measure import ROOT, synchronize

IMAGES = ROOT / "examples" / "images"
RESULTS = ROOT / "benchmarks" / "results"


def measure(transfer: Transfer, config: TransferConfig, batch: int, repeats: int) -> list[float]:
    """Seconds of each timed batch of `batch` seeds (after one untimed batch)."""
    content, style = IMAGES / "chelsea.png", IMAGES / "starry_night.jpg"
    runs = [(content, style, config.replace(seed=seed)) for seed in range(batch)]
    device = resolve_device(config.device)
    seconds = []
    for attempt in range(repeats + 1):
        synchronize(device)
        started = time.perf_counter()
        transfer.run_batch(runs)
        synchronize(device)
        if attempt:
            seconds.append(time.perf_counter() - started)
    return seconds


def run(device: str, size: int, batches: Sequence[int], evaluations: int, repeats: int) -> dict:
    """Median seconds and pictures per second of each batch size, with the device it ran on."""
    target = resolve_device(device)
    config = TransferConfig(scales=(size,), iterations=evaluations, tolerance=0.0, init="noise", device=device)
    transfer = Transfer(config)
    rows = []
    for batch in batches:
        seconds = statistics.median(measure(transfer, config, batch, repeats))
        rows.append({"batch": batch, "seconds": seconds, "pictures_per_second": batch / seconds})
    return {"device": f"{device_name(target)}, {resolve_precision('auto', target)}", "size": size,
            "evaluations": evaluations, "repeats": repeats, "rows": rows}


def table(result: dict) -> str:
    single = next((row["seconds"] for row in result["rows"] if row["batch"] == 1), None)
    rows = [[row["batch"], f"{row['seconds']:.2f}", f"{row['pictures_per_second']:.3f}",
             f"{row['seconds'] / single:.2f}" if single else "–"] for row in result["rows"]]
    return tables.render(f"Batched runs at {result['size']} px, {result['evaluations']} evaluations each "
                         f"({result['device']})", ["batch", "s per batch", "pictures/s", "× one picture's time"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the measurement the docs ask for) or cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batches", default="1,2,4,8,16", help="batch sizes, comma-separated")
    parser.add_argument("--evaluations", type=int, default=50, help="evaluations per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per batch size")
    parser.add_argument("--out", type=Path, default=None, help="the JSON  [default: results/batch-<device>.json]")
    options = parser.parse_args()
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("batch throughput: needs CUDA (or --device cpu); nothing measured")
    result = run(options.device, options.size, [int(part) for part in options.batches.split(",")],
                 options.evaluations, options.repeats)
    print(table(result))
    out = options.out or RESULTS / f"batch-{resolve_device(options.device).type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
