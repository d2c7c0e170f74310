"""Run feedback: a transfer's progress bar (or plain lines) and snapshots, as engine callbacks,
and a gallery's bar over its jobs.

Bars are tqdm's on a terminal; elsewhere (a pipe, a log file, CI) plain lines, one at a time.
A transfer's feedback reads device scalars (a host sync) only when it prints or saves, never
every step.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from .engine import Progress
from .images import save_image


def format_seconds(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour up."""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe_losses(progress: Progress) -> str:
    return "  ".join(f"{name} {progress.losses[name].item():.3e}" for name in ("content", "style", "tv"))


def _is_terminal(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


class ProgressReporter:
    """A bar over the whole run (ETA, the scale, current losses) on a terminal; plain lines every
    `every` evaluations otherwise. The losses on the bar are refreshed every `refresh` seconds."""

    def __init__(self, stream: TextIO | None = None, every: int = 50, refresh: float = 0.25):
        self.stream = stream or sys.stderr
        self.every = every
        self.refresh = refresh
        self.tty = _is_terminal(self.stream)
        self._bar: tqdm | None = None
        self._last = 0.0

    def eta(self, progress: Progress) -> float:
        return progress.elapsed / progress.done * (progress.total - progress.done)

    def __call__(self, progress: Progress) -> None:
        if self.tty:
            self._draw(progress)
            return
        last_of_scale = progress.iteration == progress.iterations
        if progress.iteration % self.every == 0 or last_of_scale or progress.iteration == 1:
            self.stream.write(
                f"scale {progress.scale + 1}/{progress.scales} {progress.shape[1]}x{progress.shape[0]} "
                f"iteration {progress.iteration}/{progress.iterations} "
                f"eta {format_seconds(self.eta(progress))} {describe_losses(progress)}\n"
            )
            self.stream.flush()

    def _draw(self, progress: Progress) -> None:
        if self._bar is None or progress.done <= self._bar.n:  # the first evaluation of a run
            self.close()
            self._bar = tqdm(total=progress.total, file=self.stream, unit="eval", dynamic_ncols=True, leave=True,
                             desc=self._scale(progress),
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")
        now = time.monotonic()
        finished = progress.done >= progress.total
        if now - self._last >= self.refresh or progress.iteration == progress.iterations or finished:
            self._last = now
            self._bar.set_description_str(self._scale(progress), refresh=False)
            self._bar.set_postfix_str(describe_losses(progress), refresh=False)
        self._bar.update(progress.done - self._bar.n)
        if finished:
            self.close()

    @staticmethod
    def _scale(progress: Progress) -> str:
        return f"scale {progress.scale + 1}/{progress.scales} {progress.shape[1]}×{progress.shape[0]}"

    def close(self) -> None:
        """End the bar (a run stopped early leaves it open until the next run or this call)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Snapshots:
    """Save the current image every `every` evaluations as OUT_s{scale}_{iteration:05d}.png."""

    def __init__(self, output: str | Path, every: int):
        output = Path(output)
        self.pattern = str(output.with_name(output.stem + "_s{scale}_{iteration:05d}" + output.suffix))
        self.every = every

    def __call__(self, progress: Progress) -> None:
        if self.every and progress.iteration % self.every == 0:
            path = self.pattern.format(scale=progress.scale + 1, iteration=progress.iteration)
            save_image(progress.image.detach().clamp(0, 1).float().cpu(), path)


class GalleryProgress:
    """A gallery's feedback: one bar over its jobs on a terminal (done, failed, left, ETA) with
    each finished job's line printed beside it; plain lines with the same counts otherwise.

    `job(line, failed)` reports one finished job; `note(line)` prints a line; `close()` ends it.
    """

    def __init__(self, total: int, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self.tty = _is_terminal(self.stream)
        self._bar = None
        if self.tty and total:
            self._bar = tqdm(total=total, file=self.stream, unit="job", dynamic_ncols=True, desc="gallery",
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")
            self._bar.set_postfix_str(self._counts(), refresh=True)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def eta(self) -> float | None:
        """Seconds left at the pace so far; None before the first job ends."""
        if not self.finished:
            return None
        return (time.monotonic() - self.started) / self.finished * (self.total - self.finished)

    def _counts(self) -> str:
        return f"done {self.done}  failed {self.failed}  left {self.total - self.finished}"

    def job(self, line: str, failed: bool = False) -> None:
        if failed:
            self.failed += 1
        else:
            self.done += 1
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
            self._bar.set_postfix_str(self._counts(), refresh=False)
            self._bar.update(1)
            return
        eta = self.eta()
        self.note(f"[{self.finished}/{self.total}] {line}  ({self._counts()}"
                  f"{f', eta {format_seconds(eta)}' if eta is not None and self.finished < self.total else ''})")

    def note(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
            return
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
