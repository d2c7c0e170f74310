"""The batch-throughput and Winograd-per-layer benchmarks run end to end (tiny, on the CPU)."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from benchmarks import batch_throughput, winograd_layers


def test_batch_throughput_on_the_cpu_writes_a_row_per_batch(tmp_path, monkeypatch, capsys):
    out = tmp_path / "batch.json"
    monkeypatch.setattr(sys, "argv", ["batch_throughput", "--device", "cpu", "--size", "32", "--batches", "1,2",
                                      "--evaluations", "2", "--repeats", "1", "--out", str(out)])
    batch_throughput.main()
    rows = json.loads(out.read_text())["rows"]
    assert [row["batch"] for row in rows] == [1, 2]
    assert all(row["seconds"] > 0 and row["pictures_per_second"] == pytest.approx(row["batch"] / row["seconds"])
               for row in rows)
    assert "× one picture's time" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message is for machines without CUDA")
def test_batch_throughput_says_it_needs_cuda(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["batch_throughput"])
    with pytest.raises(SystemExit, match="needs CUDA"):
        batch_throughput.main()


def test_winograd_layers_times_both_algorithms_and_flags_where_the_rule_disagrees():
    row = winograd_layers.time_layer(256, 256, 32, 32, repeats=1)
    assert row["direct_ms"] > 0 and row["winograd_ms"] > 0 and row["rule"] is True
    slower = {**row, "size": 128, "conv": "conv3_2", "direction": "forward", "direct_ms": 1.0, "winograd_ms": 2.0}
    table = winograd_layers.render([slower, {**slower, "direct_ms": 3.0}], "a CPU")
    lines = table.splitlines()
    assert "rule disagrees" in lines[-2] and "rule disagrees" not in lines[-1]
