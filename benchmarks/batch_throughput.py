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
    device = resolve_device(options.device)
    config = TransferConfig(scales=(options.size,), iterations=options.evaluations, tolerance=0.0, init="noise",
                            device=options.device)
    transfer = Transfer(config)
    rows, records, single = [], [], None
    for batch in [int(part) for part in options.batches.split(",")]:
        seconds = statistics.median(measure(transfer, config, batch, options.repeats))
        single = single or (seconds if batch == 1 else None)
        records.append({"batch": batch, "seconds": seconds, "pictures_per_second": batch / seconds})
        rows.append([batch, f"{seconds:.2f}", f"{batch / seconds:.3f}",
                     f"{seconds / single:.2f}" if single else "–"])
    name = f"{device_name(device)}, {resolve_precision('auto', device)}"
    print(tables.render(f"Batched runs at {options.size} px, {options.evaluations} evaluations each ({name})",
                        ["batch", "s per batch", "pictures/s", "× one picture's time"], rows))
    out = options.out or RESULTS / f"batch-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": name, "size": options.size, "evaluations": options.evaluations,
                               "repeats": options.repeats, "rows": records}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
