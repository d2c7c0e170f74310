"""A study over several image pairs: one Study per content/style pair, then verdicts pooled across them.

    result = PooledStudy([("cat.png", "starry.jpg"), ("astronaut.png", "scream.jpg")], "study", seeds=8).run()
    result.verdicts          # one pooled sentence per pair of losses, with how many image pairs agree

Each image pair is a Study of its own in DIR/pairs/<content>-x-<style>/ (its runs jobs in its
store, its own report), all sharing one Transfer, so a killed study of many pairs resumes and a
new pair adds only its own runs. The pooled test is stratified (labels swapped within seed within
image pair, each pair's effect counted in its own margins: verdicts.stratified_test); an image
pair without a margin (its reference control did not finish) is left out of the pooling, and the
report says so. DIR/report.html shows the summary matrix (loss × loss: pooled verdict, effect,
how many image pairs' own verdicts agree), DIR/summary.csv and DIR/studies.json hold the numbers.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import report as shared
from ..errors import GatysError
from . import verdicts
from .result import StudyResult
from .spaces import disagreements
from .study import Study

SUMMARY_COLUMNS = ("a", "b", "verdict", "effect_in_margins", "ci_low", "ci_high", "p", "corrected_p",
                   "smallest_p", "image_pairs", "agreeing", "seeds")


@dataclass
class PooledResult:
    """Every image pair's study and the pooled verdicts, as plain data (what studies.json holds)."""

    pairs: list[dict]        # per image pair: its folder, content, style, margin and its own verdicts
    pooled: list[dict]       # per pair of losses: the pooled verdict's numbers and each image pair's word
    spaces: dict             # per independent space (texture, colour): the same records in its distances
    verdicts: list[str]      # one pooled sentence per pair of losses
    timings: dict

    def as_dict(self) -> dict:
        return asdict(self)


class PooledStudy:
    """Runs a Study per (content, style) pair in DIR/pairs/, then pools their verdicts; options as Study's."""

    def __init__(self, pairs: Sequence[tuple[str | Path, str | Path]], directory: str | Path, **options: Any):
        if len(pairs) < 2:
            raise GatysError("a pooled study needs at least two content/style pairs")
        self.directory = Path(directory)
        self.studies: list[Study] = []
        transfer = options.pop("transfer", None)
        for content, style, folder in zip(*zip(*pairs), _folders(pairs)):
            study = Study(content, style, self.directory / "pairs" / folder, transfer=transfer, **options)
            transfer = study.transfer  # one network for every pair
            self.studies.append(study)
        first = self.studies[0].settings
        self.losses, self.alpha = first.losses, first.alpha

    def run(self, quiet: bool = False, stream=None) -> PooledResult:
        started = time.perf_counter()
        results = [study.run(quiet=quiet, stream=stream) for study in self.studies]
        runs_seconds = time.perf_counter() - started
        names = [study.directory.name for study in self.studies]
        spaces = ["vgg", *[name for name in results[0].distances.get("spaces", {})
                           if all(name in r.distances.get("spaces", {}) for r in results)]]
        by_space, left_out = {}, []
        for space in spaces:
            records, dropped = self._pool(space, names, results)
            by_space[space] = records
            left_out += [f"{name} ({space})" for name in dropped]
        sentences = [record["sentence"] for record in by_space["vgg"]]
        words = {space: {(r["a"], r["b"]): r["verdict"] for r in records} for space, records in by_space.items()}
        sentences += [line.replace(": the spaces disagree", " pooled: the spaces disagree")
                      for line in disagreements(words)] if len(words) > 1 else []
        if left_out:
            sentences.append(f"left out of the pooling (no margin: the reference control did not finish): "
                             f"{', '.join(left_out)}")
        result = PooledResult(pairs=[_pair_record(name, r) for name, r in zip(names, results)],
                              pooled=by_space.pop("vgg"), spaces=by_space, verdicts=sentences,
                              timings={"total_seconds": time.perf_counter() - started, "runs_seconds": runs_seconds})
        self._write(result)
        return result

    def _pool(self, space: str, names: list[str], results: list[StudyResult]) -> tuple[list[dict], list[str]]:
        """The pooled records of one space, and the image pairs left out of it (no margin)."""
        found = [(name, *_space_of(result, space)) for name, result in zip(names, results)]
        kept = [(name, matrix, outputs, margin) for name, matrix, outputs, margin in found if margin]
        if not kept:
            return [], [name for name, *_ in found]
        kept_names, matrices, outputs, margins = zip(*kept)
        pooled = verdicts.pooled_verdicts(list(matrices), list(outputs), list(margins), losses=self.losses,
                                          alpha=self.alpha)
        return [_pooled_record(item, list(kept_names)) for item in pooled], \
            [name for name, *_ in found if name not in kept_names]

    def _write(self, result: PooledResult) -> None:
        shared.write_csv(self.directory / "summary.csv", SUMMARY_COLUMNS,
                         ([record[name] for name in SUMMARY_COLUMNS] for record in result.pooled))
        labels = list(self.losses)
        cells: list[list[dict | None]] = [[None] * len(labels) for _ in labels]
        for record in result.pooled:
            i, j = labels.index(record["a"]), labels.index(record["b"])
            effect = "–" if record["effect_in_margins"] is None else f"{record['effect_in_margins']:.3g}"
            cells[i][j] = cells[j][i] = {"word": record["verdict"],
                                         "text": f"{record['verdict']} · effect {effect} margins · "
                                                 f"{record['agreeing']}/{record['image_pairs']} agree"}
        space_names = ["vgg", *result.spaces]
        words = {space: {(r["a"], r["b"]): r["verdict"] for r in records}
                 for space, records in {"vgg": result.pooled, **result.spaces}.items()}
        space_rows = [[r["a"], r["b"], *(words[space].get((r["a"], r["b"])) for space in space_names)]
                      for r in result.pooled]
        shared.write_html(self.directory / "report.html", "compare_pooled.html", labels=labels, cells=cells,
                          pooled=result.pooled, verdicts=result.verdicts, pairs=result.pairs,
                          space_names=space_names, space_rows=space_rows,
                          alpha=self.alpha, timings=result.timings)
        shared.write_json(self.directory / "studies.json", result.as_dict())


def _folders(pairs: Sequence[tuple[str | Path, str | Path]]) -> list[str]:
    """<content>-x-<style> per pair, numbered where two pairs would share a name."""
    names = [f"{Path(content).stem}-x-{Path(style).stem}" for content, style in pairs]
    return [name if names.count(name) == 1 else f"{index + 1}-{name}" for index, name in enumerate(names)]


def _space_of(result: StudyResult, space: str) -> tuple[np.ndarray, list[tuple[str, int]], float | None]:
    """(distance matrix, the (loss, seed) of its rows, margin) of one study in one space."""
    distances = result.distances
    own = distances if space == "vgg" else distances["spaces"][space]
    margin = distances["margin"]["margin"] if space == "vgg" else own["margin"]
    return np.asarray(own["matrix"]), [(o["loss"], o["seed"]) for o in distances["outputs"]], margin


def _pair_record(name: str, result: StudyResult) -> dict:
    settings = result.settings
    return {"folder": f"pairs/{name}", "content": settings["content"], "style": settings["style"],
            "margin": result.distances["margin"], "verdicts": {f"{p['a']} vs {p['b']}": p["verdict"]
                                                               for p in result.pairs},
            "sentences": result.verdicts, "total_seconds": result.timings.get("total_seconds"),
            "environment": {key: result.environment.get(key) for key in ("precisions", "devices")}}


def _pooled_record(item: verdicts.PooledVerdict, names: list[str]) -> dict:
    verdict = item.verdict
    return {"a": verdict.a, "b": verdict.b, "verdict": verdict.word, "effect_in_margins": verdict.effect,
            "ci_low": verdict.ci[0] if verdict.ci else None, "ci_high": verdict.ci[1] if verdict.ci else None,
            "p": verdict.p, "corrected_p": verdict.corrected_p, "smallest_p": verdict.smallest_p,
            "image_pairs": len(item.strata), "agreeing": item.agreeing, "seeds": verdict.seeds,
            "per_pair": {name: own.word for name, own in zip(names, item.strata)}, "sentence": item.sentence()}
