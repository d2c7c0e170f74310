"""The batch-throughput, Winograd-per-layer and time-to-picture benchmarks run end to end (tiny, on the CPU)."""
from __future__ import annotations

import json
import sys

import numpy as np
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


def test_pastiche_at_its_defaults_is_timed_and_scored_like_gatys(content_path, style_path, transfer):
    from benchmarks import time_to_picture

    theirs = time_to_picture.pastiche_at_defaults(content_path, style_path, transfer, steps=2, pixels=40 * 30,
                                                  device="cpu", final_size=48)
    assert theirs["seconds"] > 0 and theirs["settings"]["steps"] == 2
    assert max(theirs["image"].size) == 48
    again = transfer.score(torch.from_numpy(np.asarray(theirs["image"], dtype=np.float32) / 255).permute(2, 0, 1)[None],
                           content_path, style_path, scales=(48,), precision="fp32")["total"]
    assert theirs["objective"] == pytest.approx(again, rel=0.05)  # its own score, up to the 8-bit picture
    assert 0 < theirs["style_left"] < 10


def test_the_picture_table_gives_each_pair_its_ratio_and_change():
    from benchmarks import time_to_picture

    def measured(seconds, objective):
        return {"seconds": seconds, "objective": objective}

    result = {"machine": {"device": "a CPU", "precision": "fp32"}, "candidate": "default", "pairs": [
        {"content": "a.png", "style": "b.jpg", "old": measured(300.0, 2.0), "new": measured(100.0, 1.9),
         "old_256": None, "pastiche": None}]}
    row = time_to_picture.table(result).splitlines()[4]
    assert "0.33" in row and "-5.0%" in row and "–" in row


@pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA the batch section runs")
def test_the_suite_skips_batch_on_a_cpu_and_picture_when_quick(tmp_path, capsys):
    from benchmarks.__main__ import main

    assert main(["--quick", "--only", "batch,picture", "--out", str(tmp_path / "suite.json")]) == 0
    printed = capsys.readouterr().out
    assert "== batch ==\nskipped" in printed and "== picture ==\nskipped in --quick" in printed


def test_time_to_picture_runs_every_schedule_in_the_precision_asked_for(content_path, style_path, tmp_path,
                                                                         monkeypatch):
    from benchmarks import time_to_picture

    monkeypatch.setattr(time_to_picture, "OLD_DEFAULT", dict(scales=(48,), iterations=3, tolerance=0.0))
    monkeypatch.setattr(time_to_picture, "FINAL_SIZE", 48)
    out = tmp_path / "picture.json"
    result = time_to_picture.run([(content_path, style_path)], "32,48:3,2", at_256=False, out=out, echo=False,
                                 precision="fp32")
    row = result["pairs"][0]
    assert result["machine"]["precision"] == "fp32"
    assert row["old"]["settings"]["precision"] == row["new"]["settings"]["precision"] == "fp32"
    assert row["old"]["evaluations"] == [3] and row["new"]["evaluations"] == [3, 2]
    assert json.loads(out.read_text())["machine"]["precision"] == "fp32" and out.with_suffix(".png").exists()
