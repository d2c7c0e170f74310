"""The registry: spec strings, errors that list the valid choices, aliases, describe, plug-ins."""
from types import SimpleNamespace

import pytest
import torch

import losses
from losses import registry
from losses.moments import MomentsLoss
from losses.wasserstein import SlicedWassersteinLoss


@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(registry, "_classes", dict(registry._classes))
    monkeypatch.setattr(registry, "_aliases", dict(registry._aliases))


class MeanAbsLoss(losses.StyleLoss):
    """A third-party loss: 1/N·Σ|μ_F − μ_S|."""

    def __init__(self, power: int = 1, weight=None, layers=None):
        super().__init__(weight, layers)
        self.power = power

    def target(self, feats):
        return feats.mean(dim=(0, 2, 3))

    def forward(self, feats, target):
        return (feats.mean(dim=(2, 3)) - target).abs().pow(self.power).sum() / feats.shape[1]


@pytest.mark.parametrize("spec, expected", [
    ("gram", ("gram", {})),
    ("mmd-gaussian:sigma=auto", ("mmd-gaussian", {"sigma": "auto"})),
    ("mmd-gaussian:sigma=1+2+4,samples=4096", ("mmd-gaussian", {"sigma": [1, 2, 4], "samples": 4096})),
    ("mmd-gaussian:sigma=auto+0.5", ("mmd-gaussian", {"sigma": ["auto", 0.5]})),
    ("mmd-poly: c = 1e-3 , d=3", ("mmd-poly", {"c": 1e-3, "d": 3})),
    ("swd:projections=none,seed=-2", ("swd", {"projections": None, "seed": -2})),
    ("gram:layers=relu1_1+relu2_1,weight=5", ("gram", {"layers": ["relu1_1", "relu2_1"], "weight": 5})),
    ("x:flag=true,other-name=False", ("x", {"flag": True, "other_name": False})),
])
def test_parse_spec(spec, expected):
    assert losses.parse_spec(spec) == expected


@pytest.mark.parametrize("spec", [":sigma=1", "gram:sigma", "gram:=3"])
def test_malformed_specs_are_rejected(spec):
    with pytest.raises(ValueError, match="spec"):
        losses.parse_spec(spec)


def test_create_from_spec_and_keywords():
    loss = losses.create("mmd-gaussian:sigma=1+2,estimator=unbiased,samples=64", seed=9)
    assert (loss.sigmas, loss.estimator, loss.samples, loss.seed) == ((1, 2), "unbiased", 64, 9)
    assert losses.create("mmd-poly:c=1", c=2).c == 2  # keywords win
    assert losses.create("gram:layers=relu1_1+relu2_1").layers == ("relu1_1", "relu2_1")
    assert losses.create("gram", weight=3).weight == 3
    assert losses.create("moments").weight == MomentsLoss.default_weight


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        losses.create("gramm")
    for name in losses.available():
        assert name in str(error.value)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'sigmaa'.*valid: .*sigma.*estimator.*samples.*seed"):
        losses.create("mmd-gaussian:sigmaa=2")


@pytest.mark.parametrize("spec", [
    "mmd-gaussian:estimator=quadratic", "mmd-gaussian:sigma=-1", "mmd-gaussian:sigma=wide",
    "mmd-gaussian:samples=1", "mmd-poly:d=0", "mmd-poly:d=2.5", "moments:eps=-1", "w2:eps=-1",
    "swd:projections=0",
])
def test_bad_parameter_values_are_rejected(spec):
    with pytest.raises(ValueError):
        losses.create(spec)


def test_aliases():
    assert isinstance(losses.create("bn"), MomentsLoss)
    assert isinstance(losses.create("SWD:projections=3"), SlicedWassersteinLoss)
    assert "bn" not in losses.available() and "moments" in losses.available()
    assert losses.describe("bn").name == "moments"
    assert losses.describe("moments").aliases == ("bn",)
    assert losses.describe("swd").name == "sliced-wasserstein"


def test_describe():
    info = losses.describe("mmd-gaussian")
    assert info.doc.startswith("Gaussian-kernel MMD") and "\n" not in info.doc
    assert info.parameters == {"weight": info.default_weight, "layers": None, "sigma": "auto",
                               "estimator": "biased", "samples": None, "seed": 0}
    assert info.name in str(info)
    for name in losses.available():
        assert losses.describe(name).doc, f"{name} has no one-line doc"


def test_register_a_third_party_loss(isolated_registry):
    losses.register("mean-abs", aliases=("mabs",))(MeanAbsLoss)
    assert "mean-abs" in losses.available()
    loss = losses.create("mabs:power=2,weight=3")
    assert (loss.power, loss.weight) == (2, 3)
    feats = torch.ones(1, 2, 3, 3)
    assert loss(feats, loss.target(feats * 2)).item() == pytest.approx(1.0)
    assert losses.describe("mean-abs").doc == "A third-party loss: 1/N·Σ|μ_F − μ_S|."
    with pytest.raises(ValueError, match="already registered"):
        losses.register("mean-abs")(MeanAbsLoss)
    with pytest.raises(TypeError, match="StyleLoss subclass"):
        losses.register("not-a-loss")(dict)


def test_the_registry_is_clean_after_a_third_party_test():
    assert "mean-abs" not in losses.available()


def test_entry_points_register_their_classes(isolated_registry, monkeypatch):
    point = SimpleNamespace(name="plugged", load=lambda: MeanAbsLoss)
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [point] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert "plugged" in losses.available()
    assert isinstance(losses.create("plugged"), MeanAbsLoss)
