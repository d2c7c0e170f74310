"""Where a transfer's peak GPU memory comes from: by evaluation, with cuDNN's algorithm search on and off.

    python -m benchmarks.cuda_memory --size 512 [--evaluations 6] [--out cuda-memory.json]

On the H200 the fp32 default transfer peaked at 9.1 GB allocated at 512 px against 0.7 GB
in bf16 (docs/performance.md). The suspect is cuDNN's algorithm search
(`torch.backends.cudnn.benchmark`, which gatys.device.configure switches on): during the
first evaluation it tries algorithms with large workspaces. Each case here is a fresh
process running the default transfer for a few evaluations, fp32 or bf16, the search on or
off, graphed or eager, and records the peak allocated and reserved after every evaluation
(the first is eager, the third captures the graph), so the peak is pinned to an evaluation
and a setting. Off CUDA it reports the process's peak resident memory instead (a dry run).
"""
from __future__ import annotations

import argparse
import itertools
import json
from unittest import mock

import torch

from gatys import Transfer, engine
from gatys.device import configure, resolve_device

from . import workload
from .measure import CaseFailed, _resident_peak_bytes, isolated
from .tables import render

MIB = 2**20


def peaks_by_evaluation(size: int, precision: str, search: bool, graph: bool, evaluations: int,
                        device: str = "auto") -> dict:
    """Peak memory after each evaluation of a default transfer; runs in its own process."""
    switched = []

    def configure_then_set_search(target: torch.device) -> None:
        configure(target)
        torch.backends.cudnn.benchmark = search
        switched.append(target)

    config = workload.settings(size, precision, device, iterations=evaluations).replace(cuda_graph=graph)
    target = resolve_device(config.device)
    peaks: list[dict] = []

    def record(progress) -> None:
        if target.type == "cuda":
            torch.cuda.synchronize(target)
            peaks.append({"allocated": torch.cuda.max_memory_allocated(target),
                          "reserved": torch.cuda.max_memory_reserved(target)})
        else:
            peaks.append({"allocated": _resident_peak_bytes(), "reserved": None})

    with mock.patch.object(engine, "configure", configure_then_set_search):  # the engine's one call of it
        result = Transfer(config).run(workload.CONTENT, workload.STYLE, callback=record)
    if not switched:
        raise RuntimeError("gatys.engine no longer calls configure: the cuDNN search switch here does nothing")
    return {"size": size, "precision": result.precision, "device": result.device, "search": search,
            "graph": graph, "peaks": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--evaluations", type=int, default=6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="also write the cases as JSON here")
    options = parser.parse_args()
    on_cuda = torch.cuda.is_available() and options.device in ("auto", "cuda")
    graphs, searches = ((True, False), (True, False)) if on_cuda else ((False,), (True,))
    cases, rows = [], []
    for precision, search, graph in itertools.product(("fp32", "bf16"), searches, graphs):
        try:
            case = isolated("benchmarks.cuda_memory:peaks_by_evaluation", size=options.size, precision=precision,
                            search=search, graph=graph, evaluations=options.evaluations, device=options.device)
        except CaseFailed as error:
            rows.append([precision, "on" if search else "off", "graph" if graph else "eager", f"failed: {error}", ""])
            continue
        cases.append(case)
        allocated = [peak["allocated"] / MIB for peak in case["peaks"]]
        reserved = case["peaks"][-1]["reserved"]
        rows.append([precision, "on" if search else "off", "graph" if graph else "eager",
                     " ".join(f"{value:,.0f}" for value in allocated),
                     "–" if reserved is None else f"{reserved / MIB:,.0f}"])
    kind = "max_memory_allocated" if on_cuda else "peak RSS"
    print(render(f"Peak memory by evaluation, {options.size} px, MiB ({kind}; {cases[0]['device'] if cases else ''})",
                 ["precision", "cuDNN search", "mode", "peak after each evaluation", "reserved at the end"], rows,
                 ["each row a fresh process; the first evaluation is eager, the third captures the graph"]))
    if options.out:
        with open(options.out, "w") as handle:
            json.dump(cases, handle, indent=1)


if __name__ == "__main__":
    main()
