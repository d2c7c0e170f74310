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


class EtaEstimate:
    """Seconds left of a run, from the cost of a warm evaluation, scaled to the pixels of the scales ahead.

    The first evaluation of each scale carries that shape's warm-up (the network's first pass, oneDNN's
    primitives, allocations), which can cost more than a hundred warm ones: it is left out, so a
    scale's pace is (elapsed now − elapsed at its first evaluation) / (evaluations since). The scales
    ahead cost, per evaluation, overhead + per_pixel × pixels: from one measured scale, per_pixel is
    its pace over its pixels and overhead 0 (an upper bound for larger scales); from two or more, the
    line through the last two (overhead and per_pixel clamped at ≥ 0). Left = the current scale's
    remaining evaluations × its pace + Σ of the scales ahead of planned evaluations × their cost. A
    scale that ends early (--tolerance) drops its remaining evaluations from the estimate. None until
    one warm evaluation has been timed (and a scale's estimate comes from the scales before it until
    it has one of its own). Feed it every Progress of a run, in order; a new run starts it afresh.
    """

    def __init__(self) -> None:
        self._scale = -1
        self._first: tuple[int, float] | None = None  # (iteration, elapsed) of the scale's first evaluation
        self._pace: float | None = None                # warm seconds per evaluation of the current scale
        self._measured: dict[int, tuple[int, float]] = {}  # scale → (pixels, pace) of scales already timed

    def update(self, progress: Progress) -> float | None:
        if progress.done <= 1 or progress.scale < self._scale:  # a new run
            self.__init__()
        if progress.scale != self._scale:
            self._scale, self._first, self._pace = progress.scale, (progress.iteration, progress.elapsed), None
        elif progress.iteration > self._first[0]:
            self._pace = (progress.elapsed - self._first[1]) / (progress.iteration - self._first[0])
            self._measured[progress.scale] = (self._pixels(progress, progress.scale), self._pace)
        return self.seconds_left(progress)

    def seconds_left(self, progress: Progress) -> float | None:
        pixels = self._pixels(progress, progress.scale)
        pace = self._pace if self._pace is not None else self.cost(pixels)
        if pace is None:
            return None
        ahead = progress.plan[progress.scale + 1:] if progress.plan else ()
        later = sum(iterations * self.cost(scale_pixels) for scale_pixels, iterations in ahead)
        return max(0, progress.iterations - progress.iteration) * pace + later

    def cost(self, pixels: int) -> float | None:
        """Predicted warm seconds per evaluation at `pixels`, from the scales timed so far."""
        if not self._measured:
            return None
        timed = [self._measured[scale] for scale in sorted(self._measured)][-2:]
        if len(timed) == 1 or timed[0][0] == timed[1][0]:
            known_pixels, pace = timed[-1]
            return pace * pixels / known_pixels
        (p0, c0), (p1, c1) = timed
        per_pixel = max(0.0, (c1 - c0) / (p1 - p0))
        overhead = max(0.0, c1 - per_pixel * p1)
        return overhead + per_pixel * pixels

    @staticmethod
    def _pixels(progress: Progress, scale: int) -> int:
        if progress.plan:
            return progress.plan[scale][0]
        return progress.shape[0] * progress.shape[1]


class _Bar(tqdm):
    """tqdm with the remaining time given from outside ({left} in bar_format): EtaEstimate's, not tqdm's rate.

    A key of its own: tqdm < 4.62 builds its own `eta` and refuses a second one."""

    eta_text = "?"

    @property
    def format_dict(self):
        return {**super().format_dict, "left": self.eta_text}


def format_eta(seconds: float | None) -> str:
    return "?" if seconds is None else format_seconds(seconds)


class ProgressReporter:
    """A bar over the whole run (ETA, the scale, current losses) on a terminal; plain lines every
    `every` evaluations otherwise. The losses on the bar are refreshed every `refresh` seconds.
    The ETA is EtaEstimate's: warm evaluations only, scaled to the pixels of the scales ahead."""

    def __init__(self, stream: TextIO | None = None, every: int = 50, refresh: float = 0.25):
        self.stream = stream or sys.stderr
        self.every = every
        self.refresh = refresh
        self.tty = _is_terminal(self.stream)
        self._bar: _Bar | None = None
        self._last = 0.0
        self._estimate = EtaEstimate()
        self._left: float | None = None

    def eta(self, progress: Progress) -> float | None:
        """Seconds left after this evaluation (None before a warm evaluation has been timed)."""
        return self._left

    def __call__(self, progress: Progress) -> None:
        self._left = self._estimate.update(progress)
        if self.tty:
            self._draw(progress)
            return
        last_of_scale = progress.iteration == progress.iterations
        if progress.iteration % self.every == 0 or last_of_scale or progress.iteration == 1:
            self.stream.write(
                f"scale {progress.scale + 1}/{progress.scales} {progress.shape[1]}x{progress.shape[0]} "
                f"iteration {progress.iteration}/{progress.iterations} "
                f"eta {format_eta(self.eta(progress))} {describe_losses(progress)}\n"
            )
            self.stream.flush()

    def _draw(self, progress: Progress) -> None:
        if self._bar is None or progress.done <= self._bar.n:  # the first evaluation of a run
            self.close()
            self._bar = _Bar(total=progress.total, file=self.stream, unit="eval", dynamic_ncols=True, leave=True,
                             desc=self._scale(progress),
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{left}]{postfix}")
        now = time.monotonic()
        finished = progress.done >= progress.total
        if now - self._last >= self.refresh or progress.iteration == progress.iterations or finished:
            self._last = now
            self._bar.set_description_str(self._scale(progress), refresh=False)
            self._bar.set_postfix_str(describe_losses(progress), refresh=False)
        self._bar.eta_text = format_eta(self._left)
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
