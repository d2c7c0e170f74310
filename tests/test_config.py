"""Settings from one source: each TransferConfig field is one CLI option, one TOML key and one row of docs/cli.md."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from hypothesis import given, settings, strategies as st

from gatys.cli import cli
from gatys.config import RUN_KEYS, RunOptions, TransferConfig, options, settings_from, toml_keys
from gatys.errors import GatysError

CLI_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
RUN_FLAGS = {"--output", "--config", "--save-every", "--bit-depth", "--manifest", "--quiet"}  # the run's, not the config's


def _transfer_options() -> dict[str, click.Option]:
    command = cli.commands["transfer"]
    return {param.name: param for param in command.params if isinstance(param, click.Option)}


def test_every_field_has_exactly_one_cli_option_and_the_reverse():
    declared = options()
    cli_options = _transfer_options()
    config_options = {name: option for name, option in cli_options.items() if option.name in declared}
    assert set(config_options) == set(declared)
    for name, option in config_options.items():
        flag = f"--{declared[name].flag_for(name)}"
        assert option.opts == [flag], name
        assert option.help.endswith(f"[default: {declared[name].shown.replace('`', '')}]")
    assert {opt for option in cli_options.values() for opt in option.opts} - {
        f"--{o.flag_for(n)}" for n, o in declared.items()} == RUN_FLAGS | {"-o", "-q"}


def test_every_field_has_exactly_one_toml_key_and_the_reverse():
    keys = toml_keys()
    assert sorted(keys.values()) == sorted(options())
    assert not set(keys) & set(RUN_KEYS)
    for key, name in keys.items():
        default = getattr(TransferConfig(), name)
        config, _ = settings_from({key: default}, {})
        assert getattr(config, name) == default


def _guide_rows() -> dict[str, str]:
    """Option cell → default cell of the option table in docs/cli.md."""
    text = CLI_GUIDE.read_text()
    table = text[text.index("| option | default | what it does |"):].split("\n\n")[0]
    rows = {}
    for line in table.splitlines():
        match = re.match(r"\| `(-[^`]+)` \| (.*?) \| .* \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_cli_guide_option_table_lists_every_field_with_its_real_default():
    rows = _guide_rows()
    for name, option in options().items():
        flag = option.flag_for(name)
        cell = f"--{flag} / --no-{flag}" if option.kind == "bool" else f"--{flag}"
        assert cell in rows, f"docs/cli.md has no row for {cell}"
        assert rows[cell] == option.shown, f"docs/cli.md's default for {cell}"
    documented = {cell.split(" / ")[0].split(",")[-1].strip() for cell in rows}
    assert documented - {f"--{o.flag_for(n)}" for n, o in options().items()} == RUN_FLAGS


def test_toml_and_flags_merge_with_flags_winning():
    config, run = settings_from({"size": 64, "style_weight": 3, "loss": ["gram", "moments"], "style": "s.png",
                                 "quiet": True}, {"size": 128, "styles": ("a.png", "b.png")})
    assert (config.size, config.style_weight, config.style_losses) == (128, 3, ("gram", "moments"))
    assert run == RunOptions(styles=("a.png", "b.png"), quiet=True)


@pytest.mark.parametrize("file_settings, message", [
    ({"style-wieght": 2}, "did you mean style-weight"),
    ({"style_losses": ["gram"]}, "unknown key 'style_losses'"),
    ({"size": "big"}, "size must be a whole number"),
    ({"scales": "a,b"}, "scales: cannot read 'a,b' as whole numbers"),
    ({"iterations": 0.5}, "iterations: cannot read 0.5"),
    ({"size": None}, "size needs a value"),
    ({"quiet": "yes"}, "quiet must be true or false"),
    ({"style": 3}, "style must be a path"),
])
def test_bad_settings_are_one_clear_error(file_settings, message):
    with pytest.raises(GatysError, match=message):
        settings_from(file_settings, {})


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10_000), st.floats(allow_nan=True),
                    st.text(max_size=12), st.lists(st.one_of(st.integers(-2, 600), st.text(max_size=8)), max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted({*toml_keys(), *RUN_KEYS, "unknown-key"})), _VALUES, max_size=4))
def test_any_toml_table_is_a_config_or_a_clear_error(table):
    """Never a traceback: whatever a TOML file holds becomes a config or a GatysError."""
    try:
        settings_from(table, {})
    except GatysError as error:
        assert str(error) and "\n" not in str(error)


@pytest.mark.parametrize("size, scales, budgets", [
    (100, (100,), (500,)), (256, (128, 256), (150, 80)), (300, (150, 300), (150, 80)),
    (512, (256, 512), (150, 80)), (1024, (512, 1024), (150, 80)),
])
def test_the_default_schedule_is_two_scales_half_then_full_size_from_256_px(size, scales, budgets):
    config = TransferConfig(size=size)
    assert config.scale_sizes() == scales
    assert tuple(config.iterations_at(index) for index in range(len(scales))) == budgets


def test_explicit_scales_octaves_and_iterations_override_the_default_schedule():
    assert TransferConfig(size=512, octaves=1).scale_sizes() == (512,)
    assert TransferConfig(size=512, octaves=1).iterations_at(0) == 500
    assert TransferConfig(scales=(200, 400)).scale_sizes() == (200, 400)
    every = TransferConfig(size=512, iterations=80)
    assert [every.iterations_at(index) for index in range(3)] == [80, 80, 80]
    per_scale = TransferConfig(size=512, iterations=(50, 40, 30))
    assert [per_scale.iterations_at(index) for index in range(3)] == [50, 40, 30]
