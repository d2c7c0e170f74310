"""What a study is: its losses, seeds, strength matching, budget and frame, checked in one place.

A study runs every loss × seed under one TransferConfig that differs only in the style
loss and the seed. Its defaults differ from a single transfer's where a study needs it:
noise initialisation (so seeds vary the start), 256 px, one scale, and every evaluation of
the budget (tolerance 0: no run stops early, so all spend the same). Bad values raise GatysError.
"""
from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import losses

from ..config import TransferConfig, options
from ..errors import GatysError
from .frames import LI2017_LOSSES

DEFAULT_LOSSES = ("gram", "mmd-linear", "mmd-poly", "mmd-gaussian", "moments", "w2", "sliced-wasserstein")
MATCHES = ("none", "value", "gradient")
FRAMES = ("gatys", "li2017")
DEFAULT_SEEDS = 10  # the fewest with which Holm over the 21 pairs of the seven default losses can reach 0.05
DEFAULT_BUDGET = 300
DEFAULT_ALPHA = 0.05
DEFAULT_MARGIN = 0.1   # of the reference effect: what another painting changes (controls.py)
STUDY_DEFAULTS = {"init": "noise", "size": 256, "octaves": 1, "tolerance": 0.0}  # where they differ from a transfer's


@dataclass(frozen=True)
class StudySettings:
    """A study's settings: every one of them is recorded in study.json and the report."""

    content: Path
    style: Path
    directory: Path
    losses: tuple[str, ...] = DEFAULT_LOSSES  # the specs as given; also the losses' labels
    seeds: int = DEFAULT_SEEDS
    match: str = "none"
    budget: int = DEFAULT_BUDGET       # objective evaluations per run
    seconds: float | None = None       # a wall-clock budget per run instead (pixels then depend on the clock)
    frame: str = "gatys"
    transfer_options: dict[str, Any] = field(default_factory=dict)  # TransferConfig fields the user gave
    alpha: float = DEFAULT_ALPHA       # family-wise level of the `different` verdicts (Holm over the pairs)
    margin: float = DEFAULT_MARGIN     # equivalence margin, a fraction of the reference effect
    reference_style: Path | None = None  # the control's second painting (None: a bundled one)

    def __post_init__(self) -> None:
        for name in ("content", "style", "directory"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.reference_style is not None:
            object.__setattr__(self, "reference_style", Path(self.reference_style))
        labels = parse_losses(self.losses) if isinstance(self.losses, str) else tuple(self.losses)
        object.__setattr__(self, "losses", labels)
        object.__setattr__(self, "transfer_options", dict(self.transfer_options))
        self.validate()

    def validate(self) -> None:
        for path in (self.content, self.style, self.reference_style):
            if path is not None and not path.is_file():
                raise GatysError(f"cannot read image {path}: no such file")
        for name, value in (("alpha", self.alpha), ("margin", self.margin)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise GatysError(f"{name} must be a number between 0 and 1, got {value!r}")
        if not self.losses:
            raise GatysError("a study needs at least one loss (--losses gram,moments)")
        if len(set(self.losses)) != len(self.losses):
            raise GatysError(f"a loss is listed twice in {', '.join(self.losses)}")
        for spec in self.losses:
            try:
                name = losses.resolved(spec)[0]
            except ValueError as error:
                raise GatysError(f"loss {spec!r}: {error}") from None
            if self.frame == "li2017" and name not in LI2017_LOSSES:
                raise GatysError(f"the li2017 frame has the reference code's weights for {', '.join(LI2017_LOSSES)} "
                                 f"only, not {name}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise GatysError(f"seeds must be a whole number ≥ 1, got {self.seeds!r}")
        _choice("match", self.match, MATCHES)
        _choice("frame", self.frame, FRAMES)
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise GatysError(f"budget must be a whole number of evaluations ≥ 1, got {self.budget!r}")
        if self.seconds is not None and not (isinstance(self.seconds, (int, float)) and math.isfinite(self.seconds)
                                             and self.seconds > 0):
            raise GatysError(f"seconds must be a number > 0, got {self.seconds!r}")
        unknown = sorted(set(self.transfer_options) - set(options()))
        if unknown:
            raise GatysError(f"unknown transfer option {', '.join(unknown)}")
        for name, instead in (("style_losses", "--losses"), ("seed", "--seeds"), ("iterations", "--budget")):
            if name in self.transfer_options:
                raise GatysError(f"a study sets {name.replace('_', '-')} itself: use {instead}")
        self.config  # validates the transfer options

    @property
    def config(self) -> TransferConfig:
        """The transfer settings every run shares (before its loss and seed are set)."""
        values = {**STUDY_DEFAULTS, **self.transfer_options, "iterations": self.budget}
        return TransferConfig(**values)

    @property
    def seed_values(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values.update(content=str(self.content), style=str(self.style), directory=str(self.directory),
                      losses=list(self.losses), config=self.config.as_dict(),
                      reference_style=str(self.reference_style) if self.reference_style else None)
        return values

    def command(self) -> str:
        """The `gatys compare` command line that reproduces this study."""
        words = ["gatys", "compare", str(self.content), str(self.style), "-o", str(self.directory),
                 "--losses", ",".join(self.losses), "--seeds", str(self.seeds), "--match", self.match,
                 "--frame", self.frame]
        words += ["--seconds", f"{self.seconds:g}"] if self.seconds is not None else ["--budget", str(self.budget)]
        words += ["--alpha", f"{self.alpha:g}", "--margin", f"{self.margin:g}"]
        words += ["--reference-style", str(self.reference_style)] if self.reference_style else []
        declared = options()
        for name, value in self.transfer_options.items():
            option = declared[name]
            flag = "--" + option.flag_for(name)
            if option.kind == "bool":
                words.append(flag if value else "--no-" + option.flag_for(name))
            elif option.kind == "multiple":
                for item in value:
                    words += [flag, str(item)]
            elif isinstance(value, (list, tuple)):
                words += [flag, ",".join(map(str, value))]
            else:
                words += [flag, str(value)]
        return shlex.join(words)

    def python(self) -> str:
        """The same study from Python."""
        budget = f"seconds={self.seconds!r}" if self.seconds is not None else f"budget={self.budget!r}"
        options_text = "".join(f", {name}={value!r}" for name, value in self.transfer_options.items())
        options_text += f", alpha={self.alpha!r}, margin={self.margin!r}"
        options_text += f", reference_style={str(self.reference_style)!r}" if self.reference_style else ""
        return (f"from gatys.compare import Study\n"
                f"result = Study({str(self.content)!r}, {str(self.style)!r}, {str(self.directory)!r}, "
                f"losses={list(self.losses)!r}, seeds={self.seeds}, match={self.match!r}, {budget}, "
                f"frame={self.frame!r}{options_text}).run()")


def parse_losses(text: str | Sequence[str]) -> tuple[str, ...]:
    """'gram,mmd-gaussian:samples=1024,estimator=linear,moments' → the three specs.

    Commas separate losses, and also a spec's parameters: a piece that is `key=value` (no
    colon) continues the spec before it.
    """
    if not isinstance(text, str):
        return tuple(text)
    specs: list[str] = []
    for piece in (part.strip() for part in text.split(",")):
        if not piece:
            continue
        if "=" in piece and ":" not in piece and specs:
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return tuple(specs)


def _choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise GatysError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
