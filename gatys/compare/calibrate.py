"""Fair strength: each loss's weight scaled so that it pulls on the initial image as Gram does.

`--match value` makes each loss's style term equal Gram's (at Gram's default weight, in the
study's frame) at the initial image; `--match gradient` makes the norm of its pixel
gradient equal; `none` keeps each loss's default weight. Both are linear in the weight, so
one factor per loss does it; the factor multiplies the weight of every spec of the loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import TransferConfig
from ..engine import Transfer
from ..errors import GatysError
from ..objective import Objective
from .frames import scaled_specs, spec_weights


@dataclass(frozen=True)
class Strength:
    """A style term at an image: its value and the norm of its gradient in pixels."""

    value: float
    gradient: float

    def of(self, match: str) -> float:
        return self.value if match == "value" else self.gradient


def style_term(objective: Objective, image: torch.Tensor) -> torch.Tensor:
    """The weighted style part of the objective at image, differentiable in the image."""
    feats = objective.features(image, objective.style_layers)
    terms = sum(term.value(feats, objective.style_scales) for term in objective.style_terms)
    return objective.style_weight * terms


def strength(objective: Objective, image: torch.Tensor) -> Strength:
    device = objective.content_target.device
    x = image.detach().to(device).float().requires_grad_(True)
    value = style_term(objective, x)
    (gradient,) = torch.autograd.grad(value, x)
    return Strength(float(value.detach()), float(gradient.double().norm()))


def calibrate(transfer: Transfer, content: torch.Tensor, style: torch.Tensor, configs: dict[str, TransferConfig],
              reference: TransferConfig, initial: torch.Tensor, match: str) -> tuple[dict, dict]:
    """(the configs with calibrated weights, a record per loss) at the first scale's initial image.

    The record holds the factor, the weights used, the strength before and after, and the
    matched quantity's ratio to the reference's after calibration (1 up to rounding).
    """
    size = reference.scale_sizes()[0]

    def measure(config: TransferConfig) -> Strength:
        return strength(transfer.objective(content, style, size=size, config=config), initial)

    target = measure(reference)
    calibrated, records = {}, {}
    for label, config in configs.items():
        before = measure(config)
        factor = 1.0
        if match != "none":
            quantity = before.of(match)
            if not (math.isfinite(quantity) and quantity > 0):
                raise GatysError(f"cannot match {label}'s {match} to gram's: at the initial image it is {quantity}")
            factor = target.of(match) / quantity
            config = config.replace(style_losses=scaled_specs(config.style_losses, factor))
        after = measure(config) if match != "none" else before
        calibrated[label] = config
        records[label] = {
            "factor": factor, "specs": list(config.style_losses), "weights": spec_weights(config.style_losses),
            "value_at_init": after.value, "gradient_at_init": after.gradient,
            "value_before": before.value, "gradient_before": before.gradient,
            "reference_value": target.value, "reference_gradient": target.gradient,
            "matched_ratio": after.of(match) / target.of(match) if match != "none" else None,
        }
    return calibrated, records
