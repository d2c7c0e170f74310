"""benchmarks/quality.py's verdicts on issue 32's criteria, on made-up measurements (no runs)."""
from __future__ import annotations

from benchmarks import quality


def _measured(fidelity: float, copy: float, style: float, objective: float, evaluations: list[int],
              shapes: list[list[int]]) -> dict:
    return {"content_fidelity": fidelity, "copied_object_score": copy, "style": style, "objective": objective,
            "evaluations": evaluations, "shapes": shapes, "scales": [max(shape) for shape in shapes]}


def _report(new: dict) -> dict:
    old = _measured(0.80, 0.2, 0.30, 1.00, [500], [[512, 512]])
    current = _measured(0.60, 0.2, 0.20, 0.99, [200, 150, 80], [[128, 128], [256, 256], [512, 512]])
    return {"sizes": {"512": {"a × b": {"schedules": {"old": old, "current": current, "new": new}}}}}


def test_a_run_that_meets_every_criterion_is_yes_throughout():
    new = _measured(0.76, 0.39, 0.219, 1.019, [150, 80], [[256, 256], [512, 512]])
    row = quality.criteria(_report(new), 512).splitlines()[-1]
    assert row.count("yes") == 5 and "**no**" not in row


def test_each_criterion_fails_on_its_own_bound():
    failing = {  # one value past its bound each: fidelity < old − 0.05, copy ≥ 0.4, style > current × 1.1, objective > old × 1.02
        "fidelity": _measured(0.74, 0.2, 0.2, 1.0, [150, 80], [[256, 256], [512, 512]]),
        "copy": _measured(0.8, 0.4, 0.2, 1.0, [150, 80], [[256, 256], [512, 512]]),
        "style": _measured(0.8, 0.2, 0.2201, 1.0, [150, 80], [[256, 256], [512, 512]]),
        "time": _measured(0.8, 0.2, 0.2, 1.0, [400], [[512, 512]]),
        "objective": _measured(0.8, 0.2, 0.2, 1.021, [150, 80], [[256, 256], [512, 512]]),
    }
    for criterion, new in failing.items():
        row = quality.criteria(_report(new), 512).splitlines()[-1]
        assert row.count("**no**") == 1, (criterion, row)
        column = ["fidelity", "copy", "style", "time", "objective"].index(criterion)
        assert "**no**" in row.split("|")[2 + column], (criterion, row)
