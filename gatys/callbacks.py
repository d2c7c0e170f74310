"""Run feedback as engine callbacks: a progress bar (or plain lines) and snapshots.

Each reads device scalars (a host sync) only when it prints or saves, never every step.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from .engine import Progress
from .images import save_image


def _format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe_losses(progress: Progress) -> str:
    return "  ".join(f"{name} {progress.losses[name].item():.3e}" for name in ("content", "style", "tv"))


class ProgressReporter:
    """A bar with ETA and the current losses on a terminal; plain lines every `every` evaluations otherwise."""

    def __init__(self, stream: TextIO | None = None, every: int = 50, refresh: float = 0.25):
        self.stream = stream or sys.stderr
        self.every = every
        self.refresh = refresh
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def eta(self, progress: Progress) -> float:
        return progress.elapsed / progress.done * (progress.total - progress.done)

    def __call__(self, progress: Progress) -> None:
        last_of_scale = progress.iteration == progress.iterations
        if self.tty:
            now = time.monotonic()
            if now - self._last < self.refresh and not last_of_scale:
                return
            self._last = now
            width = 24
            filled = round(width * progress.done / max(1, progress.total))
            bar = "█" * filled + "·" * (width - filled)
            line = (f"\rscale {progress.scale + 1}/{progress.scales} {progress.shape[1]}×{progress.shape[0]} "
                    f"{bar} {progress.iteration}/{progress.iterations}  eta {_format_seconds(self.eta(progress))}  "
                    f"{describe_losses(progress)}")
            self.stream.write(line + ("\n" if last_of_scale and progress.scale + 1 == progress.scales else ""))
        elif progress.iteration % self.every == 0 or last_of_scale or progress.iteration == 1:
            self.stream.write(
                f"scale {progress.scale + 1}/{progress.scales} {progress.shape[1]}x{progress.shape[0]} "
                f"iteration {progress.iteration}/{progress.iterations} "
                f"eta {_format_seconds(self.eta(progress))} {describe_losses(progress)}\n"
            )
        self.stream.flush()


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
