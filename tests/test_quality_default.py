"""Issue 32: the style's size at each scale (style_size), its option, and an honest ETA from warm evaluations."""
from __future__ import annotations

import io

import pytest
import torch

from gatys import TransferConfig, targets
from gatys.callbacks import EtaEstimate, ProgressReporter
from gatys.config import settings_from
from gatys.errors import GatysError
from gatys.run_state import Progress


# -- the style's size at each scale ------------------------------------------------------

def test_the_default_schedule_leaves_deep_layers_out_of_the_coarse_scale():
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    config = TransferConfig(size=512)
    assert config.scale_sizes() == (256, 512) and config.coarse_min_positions == 64
    assert [config.style_layers_at(size, layers) for size in config.scale_sizes()] == [layers[:3], layers]
    small = TransferConfig(size=256)
    assert small.scale_sizes() == (128, 256)
    assert [small.style_layers_at(size, layers) for size in small.scale_sizes()] == [layers[:2], layers]


def test_the_style_is_resized_with_each_scale_by_default():
    config = TransferConfig(scales=(128, 256, 512))
    assert config.style_size == "scale"
    assert [config.style_size_at(size) for size in config.scale_sizes()] == [128, 256, 512]
    assert config.replace(style_scale=1.5).style_size_at(256) == 384


def test_style_size_final_keeps_the_last_scale_s_size_at_every_scale():
    config = TransferConfig(scales=(128, 256, 512), style_size="final")
    assert [config.style_size_at(size) for size in config.scale_sizes()] == [512, 512, 512]
    assert config.replace(style_scale=0.5).style_size_at(128) == 256


def test_the_option_parses_and_refuses_an_unknown_value():
    config, _ = settings_from({"style-size": "scale"}, {})
    assert config.style_size == "scale"
    config, _ = settings_from({"style-size": "scale"}, {"style_size": "final"})
    assert config.style_size == "final"
    with pytest.raises(GatysError, match="style-size must be one of final, scale"):
        TransferConfig(style_size="fixed")


@pytest.mark.parametrize("style_size, expected", [("final", [40, 40, 40]), ("scale", [24, 32, 40])])
def test_each_scale_builds_its_objective_from_the_style_at_the_rule_s_size(
        transfer, content_path, style_path, monkeypatch, style_size, expected):
    seen = []
    build = targets.build_objective

    def spy(cache, config, network, precision, content, styles, *rest, **options):
        seen.append(max(styles[0].shape[-2:]))
        return build(cache, config, network, precision, content, styles, *rest, **options)

    monkeypatch.setattr(targets, "build_objective", spy)
    result = transfer.run(content_path, style_path, scales=(24, 32, 40), iterations=2, style_size=style_size,
                          precision="fp32", device="cpu")  # the same on a CPU without bf16
    assert seen == expected
    assert [scale["shape"][1] for scale in result.trace] == [24, 32, 40]  # the content still follows the scale


# -- the ETA ------------------------------------------------------------------------------

PLAN = ((128 * 128, 150), (256 * 256, 80))  # (pixels, evaluations) of a 256 px run: 128 → 256 px


def events(seconds_per_evaluation: list[float], warm_up: float, plan=PLAN, stop_early: dict | None = None):
    """The Progress of a run whose first evaluation of each scale costs warm_up s more than the others."""
    elapsed, done = 0.0, 0
    for scale, ((pixels, iterations), pace) in enumerate(zip(plan, seconds_per_evaluation)):
        side = round(pixels ** 0.5)
        for iteration in range(1, (stop_early or {}).get(scale, iterations) + 1):
            elapsed += pace + (warm_up if iteration == 1 else 0.0)
            done += 1
            yield Progress(scale, len(plan), (side, side), iteration, iterations, done,
                           sum(n for _, n in plan), {}, torch.zeros(1), elapsed, plan)


def test_the_eta_leaves_out_the_warm_up_and_scales_the_scales_ahead_by_their_pixels():
    estimate = EtaEstimate()
    run = list(events([0.02, 0.06], warm_up=20.0))
    assert estimate.update(run[0]) is None  # nothing warm timed yet: unknown, not minutes
    second = estimate.update(run[1])
    # 148 more at 0.02 s, then 80 at 4× the pixels priced linearly from the first scale (an upper bound)
    assert second == pytest.approx(148 * 0.02 + 80 * 0.08)
    actual = 148 * 0.02 + 80 * 0.06 + 20.0
    assert second < 2 * actual  # the old estimate, elapsed / done × left, said 38 minutes
    naive = run[1].elapsed / run[1].done * (run[1].total - run[1].done)
    assert naive > 2000


def test_the_eta_at_a_later_scale_uses_that_scale_s_own_warm_pace():
    estimate = EtaEstimate()
    for progress in events([0.02, 0.06], warm_up=5.0):
        left = estimate.update(progress)
        if progress.scale == 1 and progress.iteration == 1:
            assert left == pytest.approx(79 * 0.08)  # predicted from the first scale until one warm evaluation
        if progress.scale == 1 and progress.iteration == 11:
            assert left == pytest.approx(69 * 0.06)
    assert left == 0


def test_with_two_timed_scales_the_cost_has_an_overhead_and_a_per_pixel_part():
    plan = ((100, 10), (400, 10), (1600, 10))
    estimate = EtaEstimate()
    for progress in events([0.2, 0.5, 1.7], warm_up=3.0, plan=plan):
        left = estimate.update(progress)
        if progress.scale == 1 and progress.iteration == 10:
            assert left == pytest.approx(10 * 1.7)  # 0.1 + 0.001 × 1600 from the line through (100, 0.2), (400, 0.5)


def test_a_scale_that_stops_early_drops_its_remaining_evaluations():
    estimate = EtaEstimate()
    for progress in events([0.02, 0.06], warm_up=1.0, stop_early={0: 50}):
        left = estimate.update(progress)
        if progress.scale == 1 and progress.iteration == 2:
            assert left == pytest.approx(78 * 0.06)


def test_a_second_run_starts_the_estimate_afresh():
    estimate = EtaEstimate()
    for progress in events([0.02, 0.06], warm_up=1.0):
        estimate.update(progress)
    first = next(iter(events([1.0, 3.0], warm_up=1.0)))
    assert estimate.update(first) is None


def test_plain_lines_print_the_estimate_or_a_question_mark():
    stream = io.StringIO()
    reporter = ProgressReporter(stream=stream, every=50)
    run = list(events([0.02, 0.06], warm_up=20.0))
    for progress in run[:50]:
        progress.losses = {name: torch.tensor(1.0) for name in ("content", "style", "tv")}
        reporter(progress)
    first, fiftieth = stream.getvalue().splitlines()
    assert " eta ? " in first
    assert " eta 0:08 " in fiftieth  # 100 × 0.02 + 80 × 0.08 s = 8.4 s, not the 76 s of elapsed / done


# -- deep style layers at coarse scales ---------------------------------------------------

def test_coarse_scales_keep_the_layers_with_enough_positions_and_the_last_scale_keeps_all():
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    config = TransferConfig(size=512, coarse_min_positions=32)
    assert config.style_layers_at(128, layers) == layers[:3]   # 128 / 4 = 32 at relu3_1, 16 at relu4_1
    assert config.style_layers_at(256, layers) == layers[:4]   # 256 / 8 = 32 at relu4_1
    assert config.style_layers_at(512, layers) == layers       # the last scale: every layer
    assert config.style_layers_at(16, layers) == ("relu1_1",)  # never none: the shallowest stays
    assert TransferConfig(size=512, coarse_min_positions=0).style_layers_at(128, layers) == layers


def test_coarse_min_positions_refuses_a_negative_count():
    with pytest.raises(GatysError, match="coarse-min-positions must be a whole number"):
        TransferConfig(coarse_min_positions=-1)


@pytest.mark.parametrize("minimum, expected", [
    (4, [("relu1_1", "relu2_1", "relu3_1"), ("relu1_1", "relu2_1", "relu3_1", "relu4_1"), "all"]),
    (0, ["all", "all", "all"]),
])
def test_each_scale_s_objective_uses_the_rule_s_layers(transfer, content_path, style_path, monkeypatch,
                                                       minimum, expected):
    every = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    seen = []
    build = targets.build_objective

    def spy(*args, **kwargs):
        objective = build(*args, **kwargs)
        seen.append(objective.style_terms[0].layers)
        return objective

    monkeypatch.setattr(targets, "build_objective", spy)
    transfer.run(content_path, style_path, scales=(24, 32, 48), iterations=2, coarse_min_positions=minimum,
                 style_layers=every)
    assert seen == [every if layers == "all" else layers for layers in expected]
    # scoring uses the last scale's objective: every layer, whatever the rule
    scored = transfer.objective(content_path, style_path, scales=(24, 32, 48), coarse_min_positions=minimum,
                                style_layers=every)
    assert scored.style_terms[0].layers == every
