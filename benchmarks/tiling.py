"""Print size in bounded memory: seconds per evaluation and peak memory, untiled and under budgets (issue 33).

    python -m benchmarks.tiling                                 # 1024, 2048, 4096 px; no budget, 8 GiB, 4 GiB
    python -m benchmarks.tiling --sizes 1024 --budgets none,2GiB --evaluations 4

Each case is one transfer of one scale (`--scales SIZE`, chicago.jpg × starry_night.jpg, default
losses, L-BFGS) of a few evaluations, in a fresh interpreter so its peak resident memory (VmHWM)
is its own. Reported: the estimate the engine priced it at, whether and how it tiled (tiles, the
pixels evaluated per pass relative to the image: the halo's overhead), the median warm seconds
per evaluation, and the peak, against the budget. "none" is the device's free memory, the
default; an untiled case the machine cannot hold is priced and not run. `python -m benchmarks
--only tiling` runs it too. Results: benchmarks/results/tiling-<cpu>.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from gatys import Transfer, TransferConfig
from gatys.device import resolve_device
from gatys.images import load_image, scaled_size
from gatys.memory import available_bytes, gib, parse_bytes, transfer_bytes
from gatys.optimize import history_vectors

from . import tables
from .measure import ROOT, PeakMemory, isolated
from .quality import cpu_label

CONTENT = ROOT / "examples" / "images" / "chicago.jpg"
STYLE = ROOT / "examples" / "images" / "starry_night.jpg"
RESULTS = ROOT / "benchmarks" / "results"


def measure(size: int, budget: str | None, evaluations: int) -> dict:
    """One case, run here (call it through `isolated`): timings, tiling and peak memory."""
    config = TransferConfig(scales=(size,), iterations=evaluations, tolerance=0.0, max_memory=budget)
    device = resolve_device(config.device)
    transfer = Transfer(config)
    stamps: list[float] = []
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        result = transfer.run(CONTENT, STYLE, callback=lambda progress: stamps.append(time.perf_counter()))
    warm = [later - earlier for earlier, later in zip(stamps[1:], stamps[2:])]  # the first carries the warm-up
    return {"size": size, "budget": budget, "shape": result.trace[-1]["shape"], "precision": result.precision,
            "tiling": result.trace[-1].get("tiling"), "evaluations": len(stamps),
            "seconds_per_evaluation": statistics.median(warm) if warm else None,
            "seconds": time.perf_counter() - started, "memory": memory.as_dict()}


def estimate(size: int, evaluations: int) -> tuple[tuple[int, int], int]:
    """The picture's shape at `size` and the bytes the engine prices its untiled evaluation at."""
    height, width = load_image(CONTENT).shape[-2:]
    shape = scaled_size(height, width, size)
    return shape, transfer_bytes(*shape, "relu5_1", history_vectors("lbfgs", evaluations))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1024,2048,4096")
    parser.add_argument("--budgets", default="none,8GiB,4GiB")
    parser.add_argument("--evaluations", type=int, default=4)
    options = parser.parse_args(argv)
    device = resolve_device("auto")
    out = RESULTS / f"tiling-{cpu_label(device)}.json"
    report = json.loads(out.read_text()) if out.exists() else {"cases": []}
    free = available_bytes(device)
    for size in map(int, options.sizes.split(",")):
        for budget in options.budgets.split(","):
            budget = None if budget == "none" else budget
            shape, needed = estimate(size, options.evaluations)
            limit = parse_bytes(budget) if budget else free
            if budget is None and free is not None and needed > free:
                case = {"size": size, "budget": None, "shape": list(shape), "estimate_bytes": needed,
                        "skipped": f"untiled it needs {gib(needed)} (estimated); {gib(free)} free"}
            elif budget is not None and needed <= limit:
                continue  # the budget does not bind: the same run as without one
            else:
                case = isolated("benchmarks.tiling:measure", size=size, budget=budget,
                                evaluations=options.evaluations)
                case["estimate_bytes"] = needed
            case["budget_bytes"] = limit
            report["cases"] = [c for c in report["cases"] if (c["size"], c["budget"]) != (size, budget)] + [case]
            out.write_text(json.dumps(report, indent=1) + "\n")
            print(line(case), flush=True)
    print(table(report))
    return 0


def line(case: dict) -> str:
    if "skipped" in case:
        return f"{case['size']} px, budget {case['budget'] or 'free memory'}: {case['skipped']}"
    tiling = case["tiling"]
    tiles = f"{tiling['tiles']} tiles of {tiling['tile'][1]}×{tiling['tile'][0]}" if tiling else "untiled"
    return (f"{case['size']} px, budget {case['budget'] or 'free memory'}: {tiles}, "
            f"{case['seconds_per_evaluation']:.2f} s per evaluation, peak {gib(case['memory']['peak_bytes'])}")


def table(report: dict) -> str:
    rows = []
    for case in sorted(report["cases"], key=lambda c: (c["size"], c["budget"] is not None, c["budget_bytes"] or 0)):
        budget = case["budget"] or f"free ({gib(case['budget_bytes'])})"
        if "skipped" in case:
            rows.append((case["size"], budget, gib(case["estimate_bytes"]), "not run", "–", "–", "–", "–"))
            continue
        tiling = case["tiling"]
        peak = case["memory"]["peak_bytes"]
        rows.append((case["size"], budget, gib(case["estimate_bytes"]),
                     f"{tiling['tiles']} × {tiling['tile'][1]}×{tiling['tile'][0]}" if tiling else "untiled",
                     f"{tiling['evaluated_pixels']:.2f}" if tiling else "1.00",
                     f"{case['seconds_per_evaluation']:.2f}", gib(peak),
                     f"{peak / case['budget_bytes']:.2f}" if case["budget_bytes"] else "–"))
    return tables.render("one L-BFGS scale of chicago × starry night: untiled and under memory budgets",
                         ("px", "budget", "untiled estimate", "tiles", "pixels per pass", "s / evaluation",
                          "peak RSS", "peak / budget"), rows,
                         ["pixels per pass: the tiles' windows (own pixels and halo) over the image's pixels"])


if __name__ == "__main__":
    raise SystemExit(main())
