"""Aligned plain-text tables and number formats for the benchmark output."""
from __future__ import annotations

import math
from typing import Sequence


def significant(value: float | None, digits: int = 3) -> str:
    """value to `digits` significant digits, never in exponent notation; '–' for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def mib(value_bytes: float | None) -> str:
    return "–" if value_bytes is None else f"{value_bytes / 2**20:,.0f}"


NEUTRAL = ("–", "", "skipped", "failed")  # cells that do not decide a column's alignment


def _numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("×", "").replace("%", "").replace("+", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def render(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str] = ()) -> str:
    """A title, a header, a rule, the rows (numbers right-aligned), then notes."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    right = [bool(cells) and all(_numeric(row[i]) or row[i] in NEUTRAL for row in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(value.rjust(width) if align else value.ljust(width)
                         for value, width, align in zip(values, widths, right)).rstrip()

    out = [title, "", line(headers), "  ".join("-" * width for width in widths)]
    out += [line(row) for row in cells]
    if notes:
        out.append("")
        out += list(notes)
    return "\n".join(out)
