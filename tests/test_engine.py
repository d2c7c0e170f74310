"""The engine at tiny sizes: optimizers, scales, init, colour, callbacks, interruption, reuse."""
from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

import gatys
from gatys import colour
from gatys.images import as_image
from gatys.errors import GatysError
from gatys.images import resize


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "lbfgsb"])
def test_each_optimizer_lowers_the_loss(transfer, content_path, style_path, optimizer):
    result = transfer.run(content_path, style_path, optimizer=optimizer, iterations=12, init="noise")
    total = result.trace[0]["losses"]["total"]
    assert len(total) == 12
    assert min(total[-3:]) < 0.7 * total[0], total
    assert result.image.shape == (1, 3, 24, 32)
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_multi_scale_runs_each_requested_size(transfer, content_path, style_path):
    result = transfer.run(content_path, style_path, scales=(24, 32, 40), iterations=(3, 2, 2))
    assert [scale["shape"] for scale in result.trace] == [[18, 24], [24, 32], [30, 40]]
    assert [len(scale["losses"]["total"]) for scale in result.trace] == [3, 2, 2]
    assert result.image.shape == (1, 3, 30, 40)
    octaves = transfer.run(content_path, style_path, size=96, octaves=3, iterations=1)
    assert [scale["shape"][1] for scale in octaves.trace] == [24, 48, 96]


def test_too_small_an_image_is_a_clear_error(transfer, content_path, style_path):
    with pytest.raises(GatysError, match="at least 16 px"):
        transfer.run(content_path, style_path, size=16, iterations=1)


@pytest.mark.parametrize("scale_init", ["upsampled", "detail"])
def test_later_scales_start_from_the_upsampled_result(transfer, content_path, style_path, scale_init):
    seen = []
    transfer.run(content_path, style_path, scales=(24, 48), iterations=2, init="noise", scale_init=scale_init,
                 callback=lambda p: seen.append((p.scale, p.iteration, p.image.detach().clone())))
    start_of_second = seen[2][2]

    def up(image):
        return torch.nn.functional.interpolate(image, size=start_of_second.shape[-2:], mode="bicubic",
                                               align_corners=False)
    # The bicubic upsample of the first scale's best image (one of its two evaluations); with detail,
    # plus the content's band above the first scale: content at 48 px − (it at 24 px, upsampled).
    detail = 0.0
    if scale_init == "detail":
        content = resize(as_image(content_path), 48)
        detail = content - up(resize(content, shape=tuple(seen[0][2].shape[-2:])))
        assert detail.abs().max() > 0.05  # the test image has edges a 24 px scale cannot hold
    candidates = [(up(image) + detail).clamp(0, 1) for _, _, image in seen[:2]]
    assert min((start_of_second - candidate).abs().max() for candidate in candidates) < 1e-6


def test_the_content_weight_is_raised_before_the_last_scale_only(transfer, content_path, style_path, monkeypatch):
    from gatys import targets
    seen, build = [], targets.build_objective

    def spy(*args, **options):
        objective = build(*args, **options)
        seen.append(objective.content_weight)
        return objective

    monkeypatch.setattr(targets, "build_objective", spy)
    transfer.run(content_path, style_path, scales=(24, 32, 48), iterations=1, content_weight=0.5,
                 coarse_content_weight=4.0, precision="fp32", device="cpu")
    assert seen == [2.0, 2.0, 0.5]  # the last scale's objective, the one a run ends on, is the one asked for
    assert transfer.objective(content_path, style_path, scales=(24, 32, 48), content_weight=0.5).content_weight == 0.5


@pytest.mark.parametrize("init", ["content", "noise", "style"])
def test_init_modes(transfer, content_path, style_path, init):
    first = []
    transfer.run(content_path, style_path, init=init, iterations=1, callback=lambda p: first.append(p.image.clone()))
    content = resize(as_image(content_path), 32)
    if init == "content":
        torch.testing.assert_close(first[0], content)
    elif init == "style":
        torch.testing.assert_close(first[0], resize(as_image(style_path), shape=(24, 32)))
    else:
        assert 0.4 < first[0].mean() < 0.6 and first[0].std() > 0.25  # uniform noise


def test_noise_init_is_seeded(transfer, content_path, style_path):
    a = transfer.run(content_path, style_path, init="noise", iterations=3, seed=7).image
    b = transfer.run(content_path, style_path, init="noise", iterations=3, seed=7).image
    c = transfer.run(content_path, style_path, init="noise", iterations=3, seed=8).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_image_path_init(transfer, content_path, style_path, image_dir):
    first = []
    transfer.run(content_path, style_path, init=str(image_dir / "style2.jpg"), iterations=1,
                 callback=lambda p: first.append(p.image.clone()))
    torch.testing.assert_close(first[0], resize(as_image(image_dir / "style2.jpg"), shape=(24, 32)))


def test_luminance_preservation_keeps_the_content_chroma(transfer, content_path, style_path):
    result = transfer.run(content_path, style_path, preserve_colors="luminance", iterations=8)
    content = resize(as_image(content_path), shape=result.image.shape[-2:])
    out_yiq, content_yiq = colour.rgb_to_yiq(result.image), colour.rgb_to_yiq(content)
    # I and Q are the content's up to clipping into [0, 1]; Y is not the content's.
    inside = ((result.image > 0.01) & (result.image < 0.99)).all(dim=1, keepdim=True).expand_as(out_yiq)[:, 1:]
    assert inside.float().mean() > 0.5
    torch.testing.assert_close(out_yiq[:, 1:][inside], content_yiq[:, 1:][inside], atol=2e-3, rtol=0)
    assert (out_yiq[:, :1] - content_yiq[:, :1]).abs().mean() > 0.01


def test_histogram_preservation_keeps_the_content_colours(transfer, content_path, tmp_path):
    """A red style pulls a plain transfer's colours toward red; matched to the content first, it does not."""
    red = torch.zeros(1, 3, 40, 40)
    red[:, 0] = 0.9
    red[:, 1:] = torch.rand(1, 2, 40, 40, generator=torch.Generator().manual_seed(0)) * 0.2
    style = tmp_path / "red.png"
    gatys.save_image(red, style)
    plain = transfer.run(content_path, style, iterations=15)
    matched = transfer.run(content_path, style, iterations=15, preserve_colors="histogram")
    content_mean = resize(as_image(content_path), 32).mean((2, 3))
    assert (plain.image.mean((2, 3)) - content_mean).abs().sum() > 0.1  # the style's red came in
    assert (matched.image.mean((2, 3)) - content_mean).abs().sum() < 0.3 * (
        plain.image.mean((2, 3)) - content_mean).abs().sum()


def test_several_styles_with_blend_weights(transfer, content_path, style_path, image_dir):
    result = transfer.run(content_path, [style_path, image_dir / "style2.jpg"], style_blend_weights=(3, 1),
                          iterations=3)
    assert result.config.blend_weights(2) == (0.75, 0.25)
    with pytest.raises(GatysError, match="blend weights"):
        transfer.run(content_path, [style_path], style_blend_weights=(1, 2), iterations=1)


def test_fusion_of_two_losses_and_adain_target(transfer, content_path, style_path):
    result = transfer.run(content_path, style_path, style_losses=("gram", "mmd-linear:weight=3,layers=relu1_1+relu2_1"),
                          content_target="adain", iterations=3)
    assert len(result.trace[0]["losses"]["total"]) == 3


def test_callbacks_see_every_evaluation(transfer, content_path, style_path):
    events = []
    transfer.run(content_path, style_path, scales=(24, 32), iterations=(2, 3), callback=events.append)
    assert [(e.scale, e.iteration, e.done, e.total) for e in events] == [
        (0, 1, 1, 5), (0, 2, 2, 5), (1, 1, 3, 5), (1, 2, 4, 5), (1, 3, 5, 5)]
    assert set(events[0].losses) == {"total", "content", "style", "tv"}


class _HostReads(TorchFunctionMode):
    """Counts the calls that bring a tensor's values to the host: on a GPU each one waits for the device."""

    READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__"}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += getattr(func, "__name__", "") in self.READS
        return func(*args, **(kwargs or {}))


def test_the_l_bfgs_loop_reads_nothing_per_step(transfer, content_path, style_path):
    """Counted on the CPU, where a read costs nothing, as the difference between a 10- and a 40-evaluation
    run, so the setup's reads cancel: the NaN guard reads once every optimize.GUARD_EVERY steps and at the
    end (once in both runs here), and nothing else in the loop reads at all. (Adam is not counted here: its
    one read per step is torch.optim's step counter, a CPU tensor even when x is on a GPU.)"""
    counts = []
    for iterations in (10, 40):
        with _HostReads() as reads:
            transfer.run(content_path, style_path, iterations=iterations, precision="auto")
        counts.append(reads.count)
    assert counts[0] > 0 and counts[1] == counts[0]  # the counter sees the setup's reads; the loop adds none


def test_interrupt_returns_the_best_image_so_far(transfer, content_path, style_path):
    def stop(progress):
        if progress.iteration == 4:
            raise KeyboardInterrupt

    result = transfer.run(content_path, style_path, iterations=50, callback=stop)
    assert result.interrupted
    assert len(result.trace[0]["losses"]["total"]) <= 4
    assert result.image.shape == (1, 3, 24, 32)


def test_network_and_style_features_are_reused(transfer, content_path, style_path):
    transfer.run(content_path, style_path, iterations=1)
    networks = dict(transfer.cache._networks)
    cached = len(transfer.cache._style_features)
    transfer.run(content_path, style_path, iterations=1, style_weight=2.0)
    assert transfer.cache._networks == networks
    assert len(transfer.cache._style_features) == cached


def test_bad_images_and_settings_are_clear_errors(transfer, content_path, style_path, tmp_path):
    with pytest.raises(GatysError, match="missing.png"):
        transfer.run(tmp_path / "missing.png", style_path)
    with pytest.raises(GatysError, match="optimizer"):
        gatys.TransferConfig(optimizer="sgd")
    with pytest.raises(GatysError, match="unknown style loss"):
        gatys.TransferConfig(style_losses=("grams",))
    with pytest.raises(GatysError, match="relu6_1"):
        gatys.TransferConfig(style_layers="relu1_1,relu6_1")
    with pytest.raises(GatysError, match="tensor"):
        transfer.run(torch.rand(2, 3, 8, 8), style_path)


def test_transfer_function_returns_a_pil_image(content_path, style_path):
    image = gatys.transfer(content_path, style_path, size=24, iterations=2, precision="fp32", device="cpu")
    assert image.size == (24, 18) and image.mode == "RGB"


def test_objective_and_score_reproduce_the_run(transfer, content_path, style_path):
    """Studies score images with exactly a run's objective: its last loss is the score of its last image.

    Adam keeps the iterate in [0, 1], as images are; L-BFGS's may leave it, and scoring clamps.
    """
    seen = []
    result = transfer.run(content_path, style_path, iterations=4, optimizer="adam",
                          callback=lambda p: seen.append(p.image.detach().clone()))
    scores = transfer.score(seen[-1], content_path, style_path)
    assert scores["total"] == pytest.approx(result.trace[0]["losses"]["total"][-1], rel=1e-5)
    assert transfer.score(resize(as_image(content_path), 32), content_path, style_path)["content"] == 0
    objective = transfer.objective(content_path, style_path, size=48)
    assert objective.image_shape == (36, 48)


def test_the_result_is_the_best_image_evaluated(transfer, content_path, style_path):
    """Adam with a large step makes the loss jump about; the result is the lowest-loss image, not the last."""
    seen = []
    result = transfer.run(content_path, style_path, optimizer="adam", learning_rate=0.5, iterations=6, init="noise",
                          callback=lambda p: seen.append(p.image.detach().clone()))
    totals = result.trace[0]["losses"]["total"]
    best = min(range(len(totals)), key=totals.__getitem__)
    assert best != len(totals) - 1  # else the test could not tell best from last
    assert torch.equal(result.image, seen[best].clamp(0, 1))
