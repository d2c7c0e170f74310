"""A small loss-equivalence study on the bundled images, then its verdict table.

Chelsea in the style of Starry Night: five losses × nine seeds (the fewest with which Holm over
their ten pairs can reach p < 0.05), their cross-evaluation matrix, and each pair's verdict:
different, equivalent or inconclusive. Writes the study (report.html, grid.png, CSVs, study.json)
to ./study/.

    python examples/study.py [--size 128] [--budget 300] [--frame gatys|li2017] [--out study]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gatys.compare import Study

HERE = Path(__file__).resolve().parent


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) for line in lines)


def number(value) -> str:
    return "–" if value is None else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", default=HERE / "images" / "chelsea.png")
    parser.add_argument("--style", default=HERE / "images" / "starry_night.jpg")
    parser.add_argument("--losses", default=None,
                        help="default: gram,mmd-linear,mmd-gaussian,moments,w2 (li2017 frame: the paper's five)")
    parser.add_argument("--seeds", type=int, default=9)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--match", default="none")
    parser.add_argument("--frame", default="gatys")
    parser.add_argument("--out", type=Path, default=Path("study"))
    args = parser.parse_args()

    losses = args.losses or (None if args.frame == "li2017" else "gram,mmd-linear,mmd-gaussian,moments,w2")
    result = Study(args.content, args.style, args.out, losses=losses, seeds=args.seeds, budget=args.budget,
                   size=args.size, match=args.match, frame=args.frame).run()
    print()
    print(table(["loss a", "loss b", "effect", "interval", "p", "Holm p", "verdict"],
                [[p["a"], p["b"], number(p["effect"]), f"[{number(p['ci_low'])}, {number(p['ci_high'])}]",
                  number(p["p"]), number(p["corrected_p"]), p["verdict"]] for p in result.pairs]))
    print()
    cross = result.cross
    print("share of each loss left (row: optimised, column: scored by)")
    print(table(["", *cross["columns"]],
                [[row, *map(number, values)] for row, values in zip(cross["rows"], cross["mean"])]))
    print(f"\n{result.timings['total_seconds']:.0f} s; report: {args.out / 'report.html'}")


if __name__ == "__main__":
    main()
