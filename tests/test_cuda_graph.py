"""CUDA graph replay of an evaluation: the same numbers as eager evaluation, per loss and end to end.

The CUDA tests need a GPU and are skipped without one (CI has none); run them where there
is one: `python -m pytest tests/test_cuda_graph.py`. The rest run everywhere.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils._pytree import tree_map

import gatys
import losses
from gatys.fast.cuda_graph import GraphedEvaluation, evaluate_eagerly
from gatys.errors import GatysError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_graphs_need_a_cuda_tensor():
    with pytest.raises(ValueError, match="CUDA tensor"):
        GraphedEvaluation(lambda x: (x.sum(), {}), torch.zeros(2, requires_grad=True))


def test_cuda_graph_setting_must_be_a_bool():
    with pytest.raises(GatysError, match="cuda-graph must be true or false"):
        gatys.TransferConfig(cuda_graph="yes")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", losses.available())
def test_a_loss_s_value_and_gradient_read_nothing_back(name, dtype):
    """What capture needs, checked without a GPU: a meta tensor has no values, so a host read in forward or
    backward (.item(), a bool, a copy to the CPU) raises. A library's own read inside one call, like the
    check in CUDA's eigvalsh that makes w2 not capturable, is not visible here; the CUDA tests see it."""
    generator = torch.Generator().manual_seed(0)
    loss = losses.create(name)
    target = loss.target(torch.rand(1, 16, 12, 10, generator=generator))  # once per scale: outside the graph
    target = tree_map(lambda value: value.to("meta") if isinstance(value, torch.Tensor) else value, target)
    feats = torch.rand(1, 16, 9, 11, generator=generator).to(dtype).to("meta").requires_grad_(True)
    value = loss.scaled(feats, 2.0, target)  # as the engine applies it
    value.backward()
    assert value.device.type == "meta" and value.shape == () and feats.grad.shape == feats.shape


@pytest.fixture(scope="module")
def cuda_transfer():
    """One Transfer on the GPU for the module (its networks load once)."""
    return gatys.Transfer(size=48, device="cuda")


def _objective(transfer, name: str, precision: str, generator: torch.Generator) -> tuple:
    """An objective of one style loss at one scale, on 48 px images; its start image."""
    content = torch.rand(1, 3, 36, 48, generator=generator)
    style = torch.rand(1, 3, 40, 40, generator=generator)
    objective = transfer.objective(content, style, precision=precision, style_losses=(name,))
    return objective, content.cuda()


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", losses.available())
def test_replays_match_eager_evaluation_for_every_loss(cuda_transfer, name, precision):
    """Capturable losses are captured and replay the eager numbers; the others are found and stay eager."""
    generator = torch.Generator().manual_seed(1)
    objective, start = _objective(cuda_transfer, name, precision, generator)
    x = start.clone().requires_grad_(True)
    graphed = GraphedEvaluation(objective, x)
    capturable = losses.create(name).capturable
    for step in range(5):  # eager, checked, capture and replay, then two replays, each at a new x
        with torch.no_grad():
            x.copy_(torch.rand(x.shape, generator=generator))
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            total, parts = graphed()
        ours = [str(w.message) for w in warned if issubclass(w.category, RuntimeWarning)]
        assert len(ours) == (step == 1 and not capturable), ours
        total, parts, grad = total.clone(), {k: v.clone() for k, v in parts.items()}, x.grad.clone()
        reference = x.detach().clone().requires_grad_(True)
        expected_total, expected_parts = evaluate_eagerly(objective, reference)
        torch.testing.assert_close(total, expected_total, rtol=1e-5, atol=0)
        for part, value in expected_parts.items():
            torch.testing.assert_close(parts[part], value, rtol=1e-5, atol=1e-12)
        torch.testing.assert_close(grad, reference.grad, rtol=1e-4, atol=1e-6 * reference.grad.abs().max().item())
    assert (graphed.graph is not None) == capturable and (graphed.eager_because is None) == capturable


@cuda
def test_a_host_read_in_the_objective_is_found_before_capture():
    x = torch.rand(1, 3, 8, 8, device="cuda", requires_grad=True)

    def objective(image):
        total = (image**2).sum()
        scale = float(total.item())  # a host read: not capturable
        return total / scale * 3, {}

    graphed = GraphedEvaluation(objective, x)
    graphed()
    with pytest.warns(RuntimeWarning, match="reads the device"):
        total, _ = graphed()
    torch.testing.assert_close(total, torch.tensor(3.0, device="cuda"))
    squares = (x.detach() ** 2).sum()
    torch.testing.assert_close(x.grad, 6 * x.detach() / squares)  # the value read is a constant to autograd
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total, _ = graphed()  # it stays eager, without warning again
    assert graphed.graph is None and "synchronizing" in graphed.eager_because
    assert torch.cuda.get_sync_debug_mode() == 0


class _Counted(GraphedEvaluation):
    made: list = []

    def __init__(self, objective, x):
        super().__init__(objective, x)
        self.made.append(self)


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_replayed_evaluation_scores_the_image_it_was_given(cuda_transfer, content_path, style_path,
                                                                 monkeypatch, precision):
    """Each loss a graphed run reports is the objective at that evaluation's image, recomputed eagerly.

    (Whole trajectories are no test: a 1e-6 change of the start image moves the losses
    of a 14-step run by about 1 %, and cuDNN's kernels need not be bitwise reproducible.)
    """
    monkeypatch.setattr(gatys.fast.cuda_graph, "GraphedEvaluation", _Counted)
    _Counted.made = []
    scales = (48, 64)
    objectives = [cuda_transfer.objective(content_path, style_path, size=size, precision=precision) for size in scales]
    reported, recomputed = [], []

    def check(progress):
        reported.append(progress.losses["total"].item())
        with torch.no_grad():
            recomputed.append(objectives[progress.scale](progress.image.clone())[0].item())

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an objective found uncapturable would warn
        result = cuda_transfer.run(content_path, style_path, scales=scales, iterations=(6, 8), precision=precision,
                                   callback=check)
    assert [made.graph is not None for made in _Counted.made] == [True, True]  # one graph per scale
    assert len(reported) == 14
    torch.testing.assert_close(torch.tensor(reported), torch.tensor(recomputed), rtol=1e-4, atol=0)
    first_scale = result.trace[0]["losses"]["total"]
    assert first_scale[-1] < 0.9 * first_scale[0]  # and the optimisation moves on them


@cuda
@pytest.mark.parametrize("settings", [{"optimizer": "adam", "resample": True, "style_losses": ("sliced-wasserstein",)},
                                      {"style_losses": ("gram", "w2")}, {"cuda_graph": False}])
def test_runs_that_cannot_or_should_not_be_captured_stay_eager(cuda_transfer, content_path, style_path, monkeypatch,
                                                                settings):
    monkeypatch.setattr(gatys.fast.cuda_graph, "GraphedEvaluation", _Counted)
    _Counted.made = []
    result = cuda_transfer.run(content_path, style_path, iterations=4, **settings)
    assert _Counted.made == [] and len(result.trace[0]["losses"]["total"]) == 4
