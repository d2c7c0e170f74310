"""A study's feedback and its clock: one bar for the study, a line per finished run, a time budget.

The bar (tqdm) counts runs, in fractions while one runs, with the ETA; it is drawn only on a
terminal. The line for each finished run is printed either way, with its own ETA, unless quiet.
"""
from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO

from tqdm import tqdm

from ..engine import Callback, Progress


class BudgetSpent(KeyboardInterrupt):
    """Raised by TimeBudget: the engine stops on it as on Ctrl-C and keeps the best image so far."""


class TimeBudget:
    """An engine callback that ends a run once it has run `seconds` (the evaluation in progress completes)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False

    def __call__(self, progress: Progress) -> None:
        if progress.elapsed >= self.seconds:
            self.expired = True
            raise BudgetSpent


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class StudyProgress:
    """The study's bar and lines. `run(label, seed, budget)` gives the engine callback of one run."""

    def __init__(self, total: int, done: int, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total = total
        self.done = done
        self.started = time.perf_counter()
        self.finished_here = 0
        terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = tqdm(total=total, initial=done, unit="run", file=self.stream, disable=quiet or not terminal,
                        bar_format="{desc}{percentage:3.0f}%|{bar}| {n:.1f}/{total} runs [{elapsed}<{remaining}]",
                        dynamic_ncols=True, leave=True)

    def run(self, label: str, seed: int, evaluations: int | None, seconds: float | None) -> Callback:
        """The callback of one run: moves the bar by the run's share done (evaluations or seconds)."""
        return self.runs([(label, seed)], evaluations, seconds)[0]

    def runs(self, runs: Sequence[tuple[str, int]], evaluations: int | None, seconds: float | None) -> list[Callback]:
        """The callbacks of (label, seed) runs optimised together: the bar moves by the sum of their shares."""
        self.bar.set_description_str(", ".join(f"{label} seed {seed}" for label, seed in runs) + " ")
        base, shares = self.done, [0.0] * len(runs)

        def callback_of(index: int) -> Callback:
            def callback(progress: Progress) -> None:
                share = progress.elapsed / seconds if seconds else progress.done / max(1, evaluations or progress.total)
                shares[index] = min(share, 1.0)
                self.bar.n = base + sum(shares)
                if progress.done % 10 == 0:
                    self.bar.refresh()
            return callback

        return [callback_of(index) for index in range(len(runs))]

    def finished(self, line: str, ran: bool = True) -> None:
        """A run ended (ran: it ran here, so it counts towards the ETA): print its line."""
        self.done += 1
        self.finished_here += ran
        self.bar.n = self.done
        self.bar.refresh()
        if not self.quiet:
            left = self.total - self.done
            eta = ""
            if self.finished_here and left:
                eta = f"  (eta {clock((time.perf_counter() - self.started) / self.finished_here * left)})"
            self.bar.write(f"[{self.done}/{self.total}] {line}{eta}", file=self.stream)

    def note(self, line: str) -> None:
        if not self.quiet:
            self.bar.write(line, file=self.stream)

    def close(self) -> None:
        self.bar.close()
