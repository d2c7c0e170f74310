"""A loss-equivalence study: every loss × seed run as a job, then scored, tested and reported.

    result = Study("cat.png", "starry.jpg", "study", losses=["gram", "moments"], seeds=3, size=128).run()
    result.verdicts          # one sentence per pair of losses, with its numbers

Steps: the seeds' initial images (noise, written under DIR/inits so every loss starts a
seed from the same pixels); each loss's settings in the frame, calibrated (--match); the
runs, as jobs in a Store under DIR, so an interrupted study resumes where it stopped; the
cross-evaluation matrix; the style distances and the verdicts; the identities; the report.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TextIO

import torch

from .. import __version__
from ..config import TransferConfig
from ..device import resolve_device
from ..engine import Transfer
from ..errors import GatysError
from ..images import load_image, resize, save_image, scaled_size
from ..jobs import Job, Outcome, batchable
from ..store import Store
from . import calibrate, controls, equivalence, frames, identities, report, scoring, spaces, verdicts
from .progress import StudyProgress, TimeBudget
from .result import StudyResult
from .settings import DEFAULT_ALPHA, DEFAULT_BUDGET, DEFAULT_LOSSES, DEFAULT_MARGIN, DEFAULT_SEEDS, StudySettings

CLOCK_ITERATIONS = 10**6  # the evaluation cap of a run that a wall-clock budget ends
_NO_MARGIN = 1e-300  # a margin no interval fits in: where the controls measured none, nothing is `equivalent`


@dataclass(frozen=True)
class Run:
    """One loss at one seed: its job and where the store keeps its result."""

    label: str
    seed: int
    job: Job


class Study:
    """Runs, scores and reports a study in `directory`; see gatys.compare for the options.

    losses defaults to DEFAULT_LOSSES (gatys frame) or the paper's LI2017_LOSSES (li2017 frame);
    `iterations` is accepted as a synonym of `budget`; any other keyword is a TransferConfig field.
    """

    def __init__(self, content: str | Path, style: str | Path, directory: str | Path, *,
                 losses: str | Sequence[str] | None = None, seeds: int = DEFAULT_SEEDS, match: str = "none",
                 budget: int | None = None, seconds: float | None = None, frame: str = "gatys",
                 batch: int = 1, transfer: Transfer | None = None, alpha: float = DEFAULT_ALPHA,
                 margin: float = DEFAULT_MARGIN, reference_style: str | Path | None = None, **transfer_options: Any):
        iterations = transfer_options.pop("iterations", None)  # a synonym of budget
        if isinstance(iterations, (list, tuple)):
            if len(iterations) != 1:
                raise GatysError("a study's budget is one number of evaluations per run")
            iterations = iterations[0]
        if budget is not None and iterations is not None and budget != iterations:
            raise GatysError(f"--budget {budget} and --iterations {iterations} disagree: give one")
        budget = budget if budget is not None else iterations if iterations is not None else DEFAULT_BUDGET
        if losses is None:
            losses = frames.LI2017_LOSSES if frame == "li2017" else DEFAULT_LOSSES
        self.settings = StudySettings(content, style, directory, losses, seeds, match, budget, seconds, frame,
                                      transfer_options, alpha=alpha, margin=margin, reference_style=reference_style)
        self.reference_path = self.settings.reference_style or controls.bundled_reference(self.settings.style)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise GatysError(f"batch must be a whole number >= 1, got {batch!r}")
        clock = self.settings.seconds
        if batch > 1 and clock is not None:
            raise GatysError("--batch runs several runs to one evaluation budget; a --seconds study runs one at a time")
        self.batch = batch
        self.transfer = transfer or Transfer(self.settings.config)
        self.directory = self.settings.directory
        # Pixels of a clock-budget run depend on the machine, not the settings: keep them apart by budget.
        self.store = Store(self.directory if clock is None else self.directory / "clock" / f"{clock:g}s")

    # -- the plan ---------------------------------------------------------------------------
    def prepare(self) -> tuple[dict[tuple[str, int], TransferConfig], dict[int, torch.Tensor], dict]:
        """(each loss × seed's run settings, each seed's initial image, the calibration records)."""
        settings, config = self.settings, self.settings.config
        self.content, self.style = load_image(settings.content), load_image(settings.style)
        shapes = frames.Shapes.of(tuple(self.content.shape[-2:]), tuple(self.style.shape[-2:]), config)
        initial, inits = self._initial_images(config)
        given = frozenset(settings.transfer_options)
        first = settings.seed_values[0]
        base = config.replace(seed=first, init=inits[first])
        per_loss = {label: frames.frame_config(settings.frame, base, label, shapes, given) for label in settings.losses}
        reference = frames.frame_config(settings.frame, base, "gram", shapes, given)
        calibrated, weights = calibrate.calibrate(self.transfer, self.content, self.style, per_loss, reference,
                                                  initial[first], settings.match)
        iterations = CLOCK_ITERATIONS if settings.seconds is not None else settings.budget
        configs = {(label, seed): calibrated[label].replace(seed=seed, init=inits[seed], iterations=iterations)
                   for label in settings.losses for seed in settings.seed_values}
        anchor = settings.losses[0]  # the controls run the first loss: without its style, and on another painting
        for seed in settings.seed_values:
            configs[controls.CONTENT_ONLY, seed] = configs[anchor, seed].replace(style_weight=0.0)
            configs[controls.REFERENCE_STYLE, seed] = configs[anchor, seed]
        return configs, initial, weights

    def _initial_images(self, config: TransferConfig) -> tuple[dict[int, torch.Tensor], dict[int, str]]:
        """Each seed's initial image and the init setting that gives it (noise: a PNG under DIR/inits)."""
        shape = scaled_size(*self.content.shape[-2:], config.scale_sizes()[0])
        images, inits = {}, {}
        for seed in self.settings.seed_values:
            init = config.init
            if init == "noise":
                path = self.directory / "inits" / f"noise-seed{seed}-{shape[1]}x{shape[0]}.png"
                if not path.is_file():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    save_image(torch.rand((1, 3, *shape), generator=torch.Generator().manual_seed(seed)), path)
                init = str(path)
            source = {"content": self.content, "style": self.style}.get(init)
            images[seed] = resize(source if source is not None else load_image(init), shape=shape)
            inits[seed] = init
        return images, inits

    def plan(self, configs: dict[tuple[str, int], TransferConfig]) -> list[Run]:
        """Every loss × seed, then the controls of each seed."""
        settings = self.settings

        def style_of(label: str) -> Path:
            return self.reference_path if label == controls.REFERENCE_STYLE else settings.style
        return [Run(label, seed, Job(settings.content, (style_of(label),), configs[label, seed]))
                for seed in settings.seed_values for label in (*settings.losses, *controls.LABELS)]

    # -- running ----------------------------------------------------------------------------
    def run(self, quiet: bool = False, stream: TextIO | None = None) -> StudyResult:
        """Run (or resume) the study, write its report files, and return what it measured."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise GatysError(f"cannot create the study folder {self.directory}: {error.strerror or error}") from None
        configs, initial, weights = self.prepare()
        timings["calibration_seconds"] = time.perf_counter() - started
        runs = self.plan(configs)
        mark = time.perf_counter()
        records = self._run_all(runs, quiet, stream)
        timings["runs_seconds"] = time.perf_counter() - mark
        outputs = {(r["loss"], r["seed"]): load_image(self.directory / r["image"]) for r in records
                   if r["status"] in ("done", "skipped")}
        mark = time.perf_counter()
        cross_records = scoring.score(self.transfer, self.content, self.style, configs, outputs, initial,
                                      scorers=self.settings.losses)
        cross = {**scoring.matrix(cross_records, [*self.settings.losses, *controls.LABELS], self.settings.losses),
                 "records": cross_records}
        timings["scoring_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        distances, pairs, verdicts = self._equivalence(outputs)
        timings["distance_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        checks = identities.check(*self._features([self.content, self.style], self._sizes()))
        timings["identity_seconds"] = time.perf_counter() - mark
        timings["run_seconds_total"] = sum(r["seconds"] or 0.0 for r in records)
        result = StudyResult(settings=self.settings.as_dict(), environment=self._environment(records),
                             commands={"cli": self.settings.command(), "python": self.settings.python()},
                             weights=weights, runs=records, cross=cross, distances=distances, pairs=pairs,
                             verdicts=verdicts, identities=checks, timings=timings)
        mark = time.perf_counter()
        report.write(self.directory, result, self.content, self.style, outputs)
        timings["report_seconds"] = time.perf_counter() - mark
        timings["total_seconds"] = time.perf_counter() - started
        report.write_json(self.directory, result)  # again, with the report's own time
        return result

    def _run_all(self, runs: list[Run], quiet: bool, stream: TextIO | None) -> list[dict]:
        done = [run for run in runs if self._finished(run)]
        progress = StudyProgress(len(runs), len(done), quiet, stream)
        if done:
            progress.note(f"resuming: {len(done)} of {len(runs)} runs already finished in {self.store.jobs}")
        records = {(run.label, run.seed): self._record(run, "skipped") for run in done}
        owner = {id(run.job): run for run in runs if run not in done}
        try:
            for group in batchable([run.job for run in runs if run not in done], self.batch):
                batch = [owner[id(job)] for job in group]
                for run, outcome in zip(batch, self._run_batch(batch, progress)):
                    record = self._record(run, outcome.status if outcome.status != "interrupted" else "done",
                                          outcome.error)
                    records[run.label, run.seed] = record
                    progress.finished(_line(record))
        finally:
            progress.close()
        elsewhere = [record for record in records.values() if record["status"] == "claimed"]
        if elsewhere:
            raise GatysError(f"{len(elsewhere)} run{'s' if len(elsewhere) != 1 else ''} of this study "
                             f"{'are' if len(elsewhere) != 1 else 'is'} running in another process "
                             f"({elsewhere[0]['error']}): run the study again when they have finished")
        return [records[run.label, run.seed] for run in runs]

    def _run_batch(self, batch: list[Run], progress: StudyProgress) -> list[Outcome]:
        """Runs into the store, together when more than one; a user's Ctrl-C stops the study (nothing of them counts)."""
        seconds = self.settings.seconds
        if seconds is not None:
            return [self._run_on_the_clock(run, progress) for run in batch]
        evaluations = batch[0].job.config.iterations_at(0)
        if len(batch) == 1:
            callbacks = [progress.run(batch[0].label, batch[0].seed, evaluations, None)]
        else:
            callbacks = progress.runs([(run.label, run.seed) for run in batch], evaluations, None)
        outcomes = self.store.run_batch(self.transfer, [run.job for run in batch], callbacks)
        if any(outcome.status == "interrupted" for outcome in outcomes):
            raise KeyboardInterrupt
        return outcomes

    def _run_on_the_clock(self, run: Run, progress: StudyProgress) -> Outcome:
        """One run that the clock ends: the interrupted run's best image is its result."""
        seconds = self.settings.seconds
        budget = TimeBudget(seconds)
        callback = progress.run(run.label, run.seed, run.job.config.iterations_at(0), seconds)
        outcome = self.store.run(self.transfer, run.job, [budget, callback], keep_interrupted=True)
        if outcome.status == "interrupted" and not budget.expired:
            raise KeyboardInterrupt
        return outcome

    def _finished(self, run: Run) -> bool:
        """Done in the store; for a clock budget, also a run the clock ended (its manifest says interrupted)."""
        if self.settings.seconds is None:
            return self.store.status(run.job) == "done"
        manifest = self._manifest(run.job.id)
        if manifest is None or not self.store.image_path(run.job.id).is_file():
            return False
        return not manifest.get("interrupted") or manifest["timings"]["total_seconds"] >= self.settings.seconds

    def _manifest(self, job_id: str) -> dict | None:
        try:
            return json.loads(self.store.manifest_path(job_id).read_text())
        except (OSError, ValueError):
            return None

    def _record(self, run: Run, status: str, error: str | None = None) -> dict:
        """A run as study.json keeps it: settings, the image (relative to DIR), timings and the loss trace."""
        manifest = self._manifest(run.job.id) if status in ("done", "skipped") else None
        timings = (manifest or {}).get("timings", {})
        evaluations = sum(timings.get("evaluations", [])) if manifest else None
        seconds = timings.get("total_seconds")
        return {
            "loss": run.label, "seed": run.seed, "job": run.job.id, "status": status, "error": error,
            "specs": list(run.job.config.style_losses),
            "image": str(self.store.image_path(run.job.id).relative_to(self.directory)) if manifest else None,
            "evaluations": evaluations, "seconds": seconds,
            "precision": (manifest or {}).get("precision"), "device": (manifest or {}).get("device"),
            "kernels": _kernels(manifest),
            "seconds_per_evaluation": seconds / evaluations if seconds and evaluations else None,
            "stopped_by_clock": bool(manifest and manifest.get("interrupted")),
            "final_losses": (manifest or {}).get("final_losses"), "trace": (manifest or {}).get("trace"),
        }

    # -- measuring --------------------------------------------------------------------------
    def _sizes(self) -> tuple[int, int]:
        """The longest sides of the output and of the style at the last scale."""
        config = self.settings.config
        size = config.scale_sizes()[-1]
        return size, max(1, round(size * config.style_scale))

    def _features(self, images: list[torch.Tensor], sizes: tuple[int, ...]) -> list[dict[str, torch.Tensor]]:
        """float32 features (the network in fp32, whatever the runs' precision) at the style layers."""
        config = self.settings.config
        device = resolve_device(config.device)
        network = self.transfer.network(config, device, "fp32")
        return [self.transfer.cache.features(network, resize(image, size), config.style_layers, "fp32")
                for image, size in zip(images, sizes)]

    def _equivalence(self, outputs: dict[tuple[str, int], torch.Tensor]) -> tuple[dict, list[dict], list[str]]:
        """The style distances between all outputs and to the style, and each pair's test and verdict."""
        settings = self.settings
        size, style_size = self._sizes()
        keys = list(outputs)
        (style_feats,) = self._features([self.style], (style_size,))
        scales = {layer: float(value.square().mean().sqrt().clamp_min(1e-8)) for layer, value in style_feats.items()}
        samples = [equivalence.layer_samples(feats, scales)
                   for feats in self._features([outputs[key] for key in keys], (size,) * len(keys))]
        style_samples = equivalence.layer_samples(style_feats, scales)
        matrix = equivalence.distance_matrix(samples)
        to_style = [{"loss": label, "seed": seed, "distance": equivalence.style_distance(sample, style_samples)}
                    for (label, seed), sample in zip(keys, samples)]
        judged = {"vgg": self._judge(matrix, keys)}
        others, missing = spaces.independent_matrices([outputs[key] for key in keys])
        judged.update({name: self._judge(other, keys) for name, other in others.items()})
        unit, margin, tested = judged["vgg"]
        words = {name: {(v.a, v.b): v.word for v in found} for name, (_, _, found) in judged.items()}
        pairs, sentences = [], []
        for verdict in tested:
            of_a, of_b = ([k for k, key in enumerate(keys) if key[0] == label] for label in (verdict.a, verdict.b))
            spread = equivalence.compare_pair(matrix, of_a, of_b) if of_a and of_b else {}
            pairs.append({"a": verdict.a, "b": verdict.b, "verdict": verdict.word, "seeds": verdict.seeds,
                          "effect": verdict.effect, "ci_low": verdict.ci[0] if verdict.ci else None,
                          "ci_high": verdict.ci[1] if verdict.ci else None, "level": verdict.level,
                          "p": verdict.p, "corrected_p": verdict.corrected_p, "smallest_p": verdict.smallest_p,
                          "margin": margin, "seeds_to_equivalence": verdict.seeds_to_equivalence,
                          "seeds_to_difference": verdict.seeds_to_difference, "reason": verdict.reason,
                          **{key: spread.get(key) for key in ("between_mean", "within_mean", "ratio")},
                          **{f"verdict_{name}": words[name][verdict.a, verdict.b] for name in others},
                          "sentence": verdict.sentence()})
            sentences.append(verdict.sentence())
        if margin is None:
            sentences.append("no pair can be called equivalent: the reference-style control gave no margin "
                             f"({'fewer than 2 seeds finished' if unit is None else f'its effect is {unit:.3g}'})")
        sentences += spaces.disagreements(words)
        sentences += [f"the {name} space was left out: {why}" for name, why in missing.items()]
        distances = {"definition": equivalence.DISTANCE, "outputs": [{"loss": k[0], "seed": k[1]} for k in keys],
                     "matrix": matrix.tolist(), "to_style": to_style,
                     "margin": {"unit": unit, "fraction": settings.margin, "margin": margin,
                                "anchor": settings.losses[0], "reference_style": str(self.reference_path)},
                     "alpha": settings.alpha,
                     "spaces": {name: {"matrix": judged_matrix.tolist(), "margin": judged[name][1],
                                       "unit": judged[name][0],
                                       "verdicts": [{"a": v.a, "b": v.b, "verdict": v.word, "effect": v.effect,
                                                     "ci": v.ci, "p": v.p, "corrected_p": v.corrected_p,
                                                     "sentence": v.sentence()} for v in judged[name][2]]}
                                for name, judged_matrix in others.items()},
                     "missing_spaces": missing}
        return distances, pairs, sentences

    def _judge(self, matrix, keys: list[tuple[str, int]]) -> tuple[float | None, float | None, list]:
        """(the margin's unit, the margin, a verdict per pair of losses) in one space's distances."""
        settings = self.settings
        unit = controls.margin_unit(matrix, keys, settings.losses[0])
        margin = settings.margin * unit if unit is not None and unit > 0 else None
        tested = verdicts.study_verdicts(matrix, keys, margin if margin else _NO_MARGIN, losses=settings.losses,
                                         alpha=settings.alpha)
        return unit, margin, tested

    def _environment(self, records: list[dict]) -> dict:
        """Versions, device, precision and the weights (with their SHA-256) the runs used."""
        manifest = next((self._manifest(r["job"]) for r in records if r["image"]), None) or {}
        config = self.settings.config
        device = resolve_device(config.device)
        source = self.transfer.network(config, device, "fp32").source
        return {"gatys": __version__, "versions": manifest.get("versions"), "device": manifest.get("device"),
                "precision": manifest.get("precision"), "batch": self.batch,
                "precisions": sorted({r["precision"] for r in records if r.get("precision")}),
                "devices": sorted({r["device"] for r in records if r.get("device")}),
                "kernels": sorted({r["kernels"] for r in records if r.get("kernels")}),
                "weights": manifest.get("weights") or {"name": source.name, "sha256": source.sha256},
                "frame_differences": list(frames.LI2017_DIFFERENCES) if self.settings.frame == "li2017" else []}


def _kernels(manifest: dict | None) -> str | None:
    """"AVX2, 2 threads": the CPU kernels a run used, which the id leaves out but its pixels show."""
    kernels = (manifest or {}).get("kernels")
    if not kernels:
        return None
    threads = kernels["threads"]
    return f"{kernels['cpu_capability']}, {threads} thread{'s' if threads != 1 else ''}"


def _line(record: dict) -> str:
    """One line for a finished run."""
    head = f"{record['loss']} seed {record['seed']}: {record['status']}"
    if record["status"] in ("failed", "claimed"):
        return f"{head}: {record['error']}"
    losses = record["final_losses"] or {}
    clock = " (stopped by the clock)" if record["stopped_by_clock"] else ""
    return (f"{head} in {record['seconds']:.1f} s{clock}, {record['evaluations']} evaluations, "
            f"style {losses.get('style', float('nan')):.3g}, content {losses.get('content', float('nan')):.3g}")
