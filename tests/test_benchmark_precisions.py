"""The benchmark suite on a CPU that cannot run bf16 (benchmarks/__main__.py): its bf16 rows say so, nothing is timed."""
from __future__ import annotations

import json

import pytest
import torch

import benchmarks.__main__ as suite
from gatys import device

CPU = torch.device("cpu")
NOT_SUPPORTED = "not supported on this CPU"


@pytest.fixture
def no_cpu_bf16(monkeypatch):
    monkeypatch.setattr(device, "cpu_can_run_bf16", lambda: False)


def _rate(device, precision, memory_format, channels, side, repeats):
    """floor.conv_throughput's record, without timing anything."""
    return {"precision": precision, "memory_format": "channels_last" if memory_format == torch.channels_last
            else "contiguous", "shape": [1, channels, side, side], "forward_gflops": 1.0,
            "backward_input_gflops": 1.0}


def test_floor_and_engine_rows_of_bf16_read_not_supported(monkeypatch, no_cpu_bf16):
    monkeypatch.setattr(suite.floor, "conv_throughput", _rate)
    monkeypatch.setattr(suite, "case", lambda *args, **kwargs: pytest.fail("a bf16 case was run"))
    plan = suite.Plan.for_run(suite.parse(["--quick"]), CPU)
    rates = suite.run_floor(plan, CPU)
    assert [rate.get("not_supported") for rate in rates] == [None, None, NOT_SUPPORTED, NOT_SUPPORTED]
    assert suite.floor_table(rates).count(NOT_SUPPORTED) == 2
    rows = []
    suite.run_engine(plan, CPU, rates, "fp32", [(64, "bf16", name, "eager") for name in suite.FORMATS], rows,
                     lambda: None)
    assert [row["not_supported"] for row in rows] == [NOT_SUPPORTED] * 2
    assert suite.engine_tables(rows).count(NOT_SUPPORTED) == 4  # the timing and the cost table
    assert suite.targets(rows, "fp32") == []


def test_bf16_section_reads_not_supported(monkeypatch, capsys, no_cpu_bf16, tmp_path):
    monkeypatch.setattr(suite.machine, "others_busy", lambda seconds: None)
    monkeypatch.setattr(suite.precision_check, "run", lambda *args, **kwargs: pytest.fail("bf16 was run"))
    out = tmp_path / "bench.json"
    assert suite.main(["--only", "bf16", "--device", "cpu", "--out", str(out)]) == 0
    assert f"bf16 against fp32: {NOT_SUPPORTED}" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["precision"] == {"not_supported": NOT_SUPPORTED}
    assert report["machine"]["precisions"] == ["fp32"] and report["machine"]["default_precision"] == "fp32"
