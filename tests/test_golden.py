"""The numeric contract: the golden runs (tests/golden.py) must give the numbers kept in tests/golden/.

When this fails, the engine's numbers changed for unchanged settings: raise NUMERIC_CONTRACT in
gatys/jobs.py (so that stores stop serving older pictures as done) and write the goldens again
with `python -m tests.golden --write`. A run on another CPU class or thread count differs by rounding
only, within golden.TOLERANCE (bf16 keeps a golden per kernel class, whose rounding differs by more); a
changed seed stream does not (test_a_changed_seed_stream_fails_the_golden).
"""
from __future__ import annotations

import pytest

import gatys.engine
from gatys.device import cpu_can_run_bf16
from gatys.jobs import NUMERIC_CONTRACT
from tests import golden


def _runnable(precision: str):
    if precision == "bf16" and not cpu_can_run_bf16():
        pytest.skip("this CPU cannot run bf16 convolutions: the bf16 golden is checked on CPUs that can")
    path = golden.golden_path(precision)
    if not path.is_file():
        pytest.skip(f"no golden {path.name} for this CPU's {precision} kernels yet: write it on such a CPU "
                    f"(python -m tests.golden --write --precision {precision})")
    return golden.load(precision)


def _verdict(precision: str, ran: dict, kept: dict) -> str | None:
    """None when the run gives the golden's numbers (exactly, or within rounding of another CPU class)."""
    if ran["sha256"] == kept["sha256"]:
        return None
    trace, pixels = golden.differences(ran, kept)
    limits = golden.TOLERANCE
    if trace <= limits["trace"] and pixels <= limits["pixels"]:
        return None
    return (f"the engine's {precision} numbers changed (loss trace by {trace:.2e} relative, pixels by {pixels:.2f} "
            f"levels; rounding allows {limits['trace']:.0e} and {limits['pixels']}): raise NUMERIC_CONTRACT in "
            "gatys/jobs.py and write the goldens again: python -m tests.golden --write")


@pytest.mark.parametrize("precision", golden.PRECISIONS)
def test_the_goldens_were_written_under_this_contract(precision):
    kept = _runnable(precision)
    assert kept["numeric_contract"] == NUMERIC_CONTRACT, (
        f"the {precision} golden was written under contract {kept['numeric_contract']}, the engine is at "
        f"{NUMERIC_CONTRACT}: write it again (python -m tests.golden --write)")


@pytest.mark.parametrize("precision", golden.PRECISIONS)
def test_the_engine_gives_the_golden_numbers(precision):
    kept = _runnable(precision)
    verdict = _verdict(precision, golden.run(precision), kept)
    assert verdict is None, verdict


@pytest.mark.parametrize("precision", golden.PRECISIONS)
def test_a_changed_seed_stream_fails_the_golden(monkeypatch, precision):
    """What the contract is for: another stream for the sampling losses' draws, same settings, other pixels."""
    kept = _runnable(precision)
    monkeypatch.setattr(gatys.engine, "LOSS_STREAM", gatys.engine.LOSS_STREAM ^ 1)
    verdict = _verdict(precision, golden.run(precision), kept)
    assert verdict is not None and "raise NUMERIC_CONTRACT" in verdict
