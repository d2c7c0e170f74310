"""Precision choice (gatys/device.py): bf16 only where the CPU can run it, refused with one line where it cannot."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from gatys import GatysError, device
from gatys.cli import cli
from test_cli import run_main

CPU = torch.device("cpu")


@pytest.fixture
def no_cpu_bf16(monkeypatch):
    """This CPU as one without bf16 convolutions (an AVX2-only x86, say), whatever it really has."""
    monkeypatch.setattr(device, "cpu_can_run_bf16", lambda: False)


@pytest.mark.parametrize("flags, runnable", [
    ({"avx2", "fma"}, False),
    ({"avx2", "avx512f", "avx512bw", "avx512vl"}, False),
    ({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"}, True),
    ({"avx2", "avx_ne_convert"}, True),
    (set(), False),
])
def test_without_torchs_check_the_cpu_flags_decide(monkeypatch, flags, runnable):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    monkeypatch.setattr(device, "_cpu_flags", lambda: frozenset(flags))
    assert device.cpu_can_run_bf16() is runnable


def test_torchs_check_comes_first(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    monkeypatch.setattr(device, "_cpu_flags", lambda: frozenset({"avx512bw", "avx512vl", "avx512dq"}))
    assert not device.cpu_can_run_bf16()


def test_auto_never_picks_what_this_machine_cannot_run():
    assert device.resolve_precision("auto", CPU) in device.supported_precisions(CPU)


def test_bf16_on_a_cpu_without_it_is_one_line_naming_what_it_lacks(no_cpu_bf16):
    with pytest.raises(GatysError) as error:
        device.resolve_precision("bf16", CPU)
    message = str(error.value)
    assert "\n" not in message and "AVX-512 BW/VL/DQ or AVX-NE-CONVERT" in message
    assert message.endswith("use --precision fp32")


def test_auto_picks_fp32_where_bf16_is_fast_but_cannot_run(monkeypatch, no_cpu_bf16):
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: True)  # fast must imply runnable
    assert device.resolve_precision("auto", CPU) == "fp32"
    assert device.resolve_precision("fp32", CPU) == "fp32"


def test_auto_picks_bf16_where_it_runs_and_is_fast(monkeypatch):
    monkeypatch.setattr(device, "cpu_can_run_bf16", lambda: True)
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: True)
    assert device.resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    assert device.resolve_precision("auto", CPU) == "fp32"
    assert device.resolve_precision("bf16", CPU) == "bf16"


def test_supported_precisions(monkeypatch):
    monkeypatch.setattr(device, "cpu_can_run_bf16", lambda: True)
    assert device.supported_precisions(CPU) == ("fp32", "bf16")
    monkeypatch.setattr(device, "cpu_can_run_bf16", lambda: False)
    assert device.supported_precisions(CPU) == ("fp32",)
    assert device.supported_precisions(torch.device("mps")) == ("fp32",)


def test_transfer_with_bf16_on_a_cpu_without_it_exits_2_and_writes_nothing(no_cpu_bf16, capsys, content_path,
                                                                            style_path, tmp_path):
    out = tmp_path / "out.png"
    code, lines = run_main(capsys, "transfer", content_path, style_path, "-o", out, "--size", "32", "--iterations", "3",
                           "--device", "cpu", "--precision", "bf16", "-q")
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("gatys: error: precision bf16 needs a CPU with"), lines
    assert "--precision fp32" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runnable, line", [(True, "precisions: fp32, bf16 (default "),
                                            (False, "precisions: fp32 (default fp32)")])
def test_info_lists_the_precisions_this_device_runs(monkeypatch, runnable, line):
    monkeypatch.setattr(device, "cpu_can_run_bf16", lambda: runnable)
    result = CliRunner().invoke(cli, ["info", "--device", "cpu"])
    assert result.exit_code == 0 and line in result.output, result.output
