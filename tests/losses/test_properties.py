"""Properties every registered style loss must have, third-party ones included: parametrised
over losses.available(), each built with its defaults."""
import pytest
import torch

import losses

NAMES = losses.available()


def features(seed, height=6, width=5, batch=1, channels=4, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, height, width, generator=generator, dtype=dtype)


OUTPUT = features(0)
STYLE = features(1, height=4, width=7)


def evaluate(loss, feats, style):
    return loss(feats, loss.target(style))


def permuted(feats, seed):
    """The same positions in another order (one permutation for all channels)."""
    order = torch.randperm(feats[0, 0].numel(), generator=torch.Generator().manual_seed(seed))
    return feats.flatten(2)[:, :, order].reshape(feats.shape)


@pytest.mark.parametrize("name", NAMES)
def test_zero_against_its_own_target(name):
    loss = losses.create(name)
    assert abs(evaluate(loss, OUTPUT, OUTPUT).item()) <= 1e-9 * evaluate(loss, OUTPUT, STYLE).item()


@pytest.mark.parametrize("name", NAMES)
def test_positive_against_another_style(name):
    assert evaluate(losses.create(name), OUTPUT, STYLE).item() > 0


@pytest.mark.parametrize("name", NAMES)
def test_invariant_to_permuting_positions(name):
    loss = losses.create(name)
    expected = evaluate(loss, OUTPUT, STYLE).item()
    assert evaluate(loss, permuted(OUTPUT, 2), STYLE).item() == pytest.approx(expected, rel=1e-10)
    assert evaluate(loss, OUTPUT, permuted(STYLE, 3)).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_summed_over_the_batch(name):
    loss = losses.create(name)
    target = loss.target(STYLE)
    other = features(4)
    batch = torch.cat([OUTPUT, other])
    expected = loss(OUTPUT, target) + loss(other, target)
    assert loss(batch, target).item() == pytest.approx(expected.item(), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    loss = losses.create(name)
    target = loss.target(features(1, height=2, width=4, channels=3))
    feats = features(0, height=3, width=3, channels=3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: loss(f, target), (feats,))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_fixed_seed(name):
    first, second = losses.create(name), losses.create(name)
    value = evaluate(first, OUTPUT, STYLE)
    assert evaluate(first, OUTPUT, STYLE).item() == value.item()  # one objective within a run
    assert evaluate(second, OUTPUT, STYLE).item() == value.item()
    first.resample(torch.Generator().manual_seed(5))
    second.resample(torch.Generator().manual_seed(5))
    assert evaluate(first, OUTPUT, STYLE).item() == evaluate(second, OUTPUT, STYLE).item()


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_features_reduce_in_float32(name):
    loss = losses.create(name)
    feats, style = OUTPUT.bfloat16(), STYLE.bfloat16()
    value = evaluate(loss, feats, style)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(evaluate(loss, feats.float(), style.float()).item(), rel=1e-6)


@pytest.mark.parametrize("spec", ["sliced-wasserstein", "mmd-gaussian:estimator=linear",
                                  "mmd-gaussian:samples=10"])
def test_resample_draws_a_new_objective(spec):
    loss = losses.create(spec)
    before = evaluate(loss, OUTPUT, STYLE).item()
    loss.resample(torch.Generator().manual_seed(0))
    assert evaluate(loss, OUTPUT, STYLE).item() != before


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_features_give_the_same_value_and_gradient(name):
    """The engine feeds channels_last features; layout must not change the result."""
    loss = losses.create(name)
    target = loss.target(STYLE)
    plain = OUTPUT.clone().requires_grad_(True)
    strided = OUTPUT.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    value, strided_value = loss(plain, target), loss(strided, target)
    value.backward()
    strided_value.backward()
    assert strided_value.item() == pytest.approx(value.item(), rel=1e-12)
    torch.testing.assert_close(strided.grad, plain.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_scaled_is_the_loss_of_divided_features(name):
    """The engine's layer normalisation goes through scaled(); an override must equal the division."""
    loss = losses.create(name)
    target = loss.target(STYLE / 2.5)
    direct = OUTPUT.clone().requires_grad_(True)
    scaled = OUTPUT.clone().requires_grad_(True)
    value, scaled_value = loss(direct / 2.5, target), loss.scaled(scaled, 2.5, target)
    value.backward()
    scaled_value.backward()
    assert scaled_value.item() == pytest.approx(value.item(), rel=1e-12)
    torch.testing.assert_close(scaled.grad, direct.grad, rtol=1e-10, atol=1e-14)
