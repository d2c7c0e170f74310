"""The objective: its gradient against finite differences, its parts, and layer normalisation."""
from __future__ import annotations

import torch

import losses
from gatys.objective import Objective, StyleTerm
from gatys.vgg import load_vgg


def _tiny_objective(dtype=torch.float64):
    network = load_vgg("caffe").to(dtype)
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 12, 12, generator=generator, dtype=dtype)
    style = torch.rand(1, 3, 14, 10, generator=generator, dtype=dtype)
    layers = ["relu1_1", "relu2_1"]
    style_feats = network(style, layers)
    scales = {layer: style_feats[layer].square().mean().sqrt().item() for layer in layers}
    style_feats = {layer: style_feats[layer] / scales[layer] for layer in layers}
    term = StyleTerm.build(losses.create("gram", weight=50.0), layers, [style_feats], [1.0])
    content_target = network(content, ["relu1_2"])["relu1_2"]
    objective = Objective(lambda x, names: network(x, names), "relu1_2", content_target, [term],
                          content_weight=1.0, style_weight=2.0, tv_weight=0.1,
                          content_scale=30.0, style_scales=scales)
    return objective, content


def test_objective_gradient_matches_finite_differences():
    objective, content = _tiny_objective()
    x = (content + 0.05 * torch.randn(content.shape, generator=torch.Generator().manual_seed(1),
                                      dtype=content.dtype)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda image: objective(image)[0], (x,), eps=1e-6, atol=1e-5, rtol=1e-4,
                                    fast_mode=True)


def test_objective_parts_add_up_and_are_weighted():
    objective, content = _tiny_objective()
    x = content + 0.1
    total, parts = objective(x)
    torch.testing.assert_close(total, parts["content"] + parts["style"] + parts["tv"])
    objective.style_weight *= 3
    _, tripled = objective(x)
    torch.testing.assert_close(tripled["style"], 3 * parts["style"])
    torch.testing.assert_close(tripled["content"], parts["content"])
    # At the content image the content term vanishes.
    assert objective(content)[1]["content"] == 0


def test_style_term_blend_is_the_weighted_sum_of_losses():
    """With no blended target, Σ_k w_k L(x, T_k) is what the term computes."""
    generator = torch.Generator().manual_seed(2)
    feats = [{"a": torch.rand(1, 4, 5, 6, generator=generator, dtype=torch.float64)} for _ in range(3)]
    x = {"a": torch.rand(1, 4, 7, 5, generator=generator, dtype=torch.float64)}
    loss = losses.create("gram", weight=1.0)
    term = StyleTerm.build(loss, ["a"], feats, [0.5, 0.3, 0.2])
    expected = sum(w * loss(x["a"], loss.target(f["a"])) for w, f in zip([0.5, 0.3, 0.2], feats))
    torch.testing.assert_close(term.value(x, {}), expected, rtol=1e-12, atol=0)
