"""Each loss against an independent float64 reference: its formula written out in numpy, a
brute-force kernel matrix, scipy's sqrtm, a per-channel sort. Output and style have different
numbers of positions (M_F ≠ M_S) so that a wrong normalisation cannot hide.
"""
import numpy as np
import pytest
import scipy.linalg
import torch

import losses
from losses import functional

CHANNELS = 5


def features(seed, height=6, width=7, batch=1, channels=CHANNELS):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, height, width, generator=generator, dtype=torch.float64)


OUTPUT = features(0, batch=2)  # two images: every loss is summed over the batch
STYLE = features(1, height=5, width=5)


def columns(feats):
    """Each batch item as an N×M numpy matrix."""
    return [item.reshape(item.shape[0], -1).numpy() for item in feats]


def value(spec, feats=OUTPUT, style=STYLE, **params):
    loss = losses.create(spec, **params)
    return loss(feats, loss.target(style)).item()


def moments_of(matrix):
    """(Ĝ, μ, biased Σ) of an N×M matrix."""
    count = matrix.shape[1]
    mean = matrix.mean(axis=1)
    raw = matrix @ matrix.T / count
    return raw, mean, raw - np.outer(mean, mean)


def brute_mmd(x, y, kernel, estimator="biased"):
    """MMD² from the full kernel matrices; x, y are N×M (columns are samples)."""
    m, n = x.shape[1], y.shape[1]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    if estimator == "unbiased":
        return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                - 2 * kxy.mean())
    pairs = min(m, n) // 2
    h = [kernel(x[:, [2 * p]], x[:, [2 * p + 1]]) + kernel(y[:, [2 * p]], y[:, [2 * p + 1]])
         - kernel(x[:, [2 * p]], y[:, [2 * p + 1]]) - kernel(x[:, [2 * p + 1]], y[:, [2 * p]]) for p in range(pairs)]
    return np.mean(h)


def polynomial(c, d):
    return lambda x, y: (x.T @ y + c) ** d


def gaussian(gammas):
    def kernel(x, y):
        distances = ((x[:, :, None] - y[:, None, :]) ** 2).sum(axis=0)
        return sum(np.exp(-gamma * distances) for gamma in gammas)

    return kernel


def test_gram_equals_its_formula():
    style_raw = moments_of(columns(STYLE)[0])[0]
    expected = sum(((moments_of(f)[0] - style_raw) ** 2).sum() for f in columns(OUTPUT)) / (4 * CHANNELS**2)
    assert value("gram") == pytest.approx(expected, rel=1e-12)


def test_mmd_poly_default_is_gram():
    assert value("mmd-poly") == pytest.approx(value("gram"), rel=1e-10)
    assert value("mmd-poly:c=0,d=2") == pytest.approx(value("gram"), rel=1e-10)


def test_gram_is_quadratic_kernel_mmd_over_4n2():
    expected = sum(brute_mmd(f, columns(STYLE)[0], polynomial(0, 2)) for f in columns(OUTPUT)) / (4 * CHANNELS**2)
    assert value("gram") == pytest.approx(expected, rel=1e-10)


def test_mmd_poly_with_offset_is_gram_plus_mean_term():
    c = 0.7
    style_raw, style_mean, _ = moments_of(columns(STYLE)[0])
    expected = 0.0
    for f in columns(OUTPUT):
        raw, mean, _ = moments_of(f)
        expected += (((raw - style_raw) ** 2).sum() + 2 * c * ((mean - style_mean) ** 2).sum()) / (4 * CHANNELS**2)
    assert value("mmd-poly", c=c) == pytest.approx(expected, rel=1e-10)
    brute = sum(brute_mmd(f, columns(STYLE)[0], polynomial(c, 2)) for f in columns(OUTPUT)) / (4 * CHANNELS**2)
    assert value("mmd-poly", c=c) == pytest.approx(brute, rel=1e-10)


@pytest.mark.parametrize("tile", [functional.TILE, 4])
@pytest.mark.parametrize("c, d", [(0.5, 3), (0.0, 1), (1.0, 4)])
def test_mmd_poly_other_degrees_equal_brute_force(c, d, tile):
    loss = losses.create("mmd-poly", c=c, d=d)
    loss.tile = tile
    expected = sum(brute_mmd(f, columns(STYLE)[0], polynomial(c, d)) for f in columns(OUTPUT)) / (4 * CHANNELS**2)
    assert loss(OUTPUT, loss.target(STYLE)).item() == pytest.approx(expected, rel=1e-10)


def test_mmd_linear_is_mean_matching():
    style_mean = moments_of(columns(STYLE)[0])[1]
    expected = sum(((moments_of(f)[1] - style_mean) ** 2).sum() for f in columns(OUTPUT)) / CHANNELS
    assert value("mmd-linear") == pytest.approx(expected, rel=1e-12)
    brute = sum(brute_mmd(f, columns(STYLE)[0], polynomial(0, 1)) for f in columns(OUTPUT)) / CHANNELS
    assert value("mmd-linear") == pytest.approx(brute, rel=1e-10)


def auto_gamma(style):
    """1/(2σ²) with 2σ² the mean squared distance over all pairs of style positions, by brute force."""
    distances = ((style[:, :, None] - style[:, None, :]) ** 2).sum(axis=0)
    return 1 / distances.mean()


@pytest.mark.parametrize("tile", [functional.TILE, 5])
@pytest.mark.parametrize("samples", [None, 12])
@pytest.mark.parametrize("estimator", ["biased", "unbiased", "linear"])
def test_gaussian_mmd_estimators_equal_brute_force(estimator, samples, tile):
    seed = 3
    loss = losses.create("mmd-gaussian", sigma=["auto", 2.5], estimator=estimator, samples=samples, seed=seed)
    loss.tile = tile
    style = columns(STYLE)[0]
    gammas = [auto_gamma(style), 1 / (2 * 2.5**2)]  # the bandwidth comes from all style positions

    def picked(matrix, stream):
        # the documented sampling: a fixed random subset, or order for the linear estimator
        if estimator == "linear" or samples is not None:
            count = matrix.shape[1]
            return matrix[:, functional.random_indices(count, samples, 2 * seed + stream).numpy()]
        return matrix

    style = picked(style, stream=1)
    expected = sum(brute_mmd(picked(f, stream=0), style, gaussian(gammas), estimator)
                   for f in columns(OUTPUT)) / CHANNELS
    assert loss(OUTPUT, loss.target(STYLE)).item() == pytest.approx(expected, rel=1e-10)


def full_gaussian(*gammas):
    def total(x, y):
        distances = (x[:, None, :] - y[None, :, :]).square().sum(2)
        return sum(torch.exp(-gamma * distances) for gamma in gammas).sum()

    return total


def full_polynomial(x, y):
    return (x @ y.T + 0.5).pow(3).sum()


@pytest.mark.parametrize("kernel, full", [
    (functional.GaussianKernel(torch.tensor([0.05, 0.3], dtype=torch.float64)), full_gaussian(0.05, 0.3)),
    (functional.GaussianKernel(torch.tensor([0.05], dtype=torch.float64)), full_gaussian(0.05)),
    (functional.PolynomialKernel(0.5, 3), full_polynomial),
], ids=["gaussians", "gaussian", "poly"])
@pytest.mark.parametrize("tile", [1, 4, 64])
@pytest.mark.parametrize("symmetric", [True, False])
def test_tiled_kernel_sum_and_gradient_equal_the_full_matrix(kernel, full, tile, symmetric):
    x = features(5).reshape(CHANNELS, -1).T.contiguous().requires_grad_(True)  # 42 rows
    y = None if symmetric else features(6, 5, 5).reshape(CHANNELS, -1).T.contiguous().requires_grad_(True)
    tiled = functional.kernel_sum(x, y, kernel, tile)
    reference = full(x, x if symmetric else y)  # autograd through the whole matrix
    assert tiled.item() == pytest.approx(reference.item(), rel=1e-12)
    inputs = (x,) if symmetric else (x, y)
    for tiled_grad, full_grad in zip(torch.autograd.grad(tiled, inputs), torch.autograd.grad(reference, inputs)):
        torch.testing.assert_close(tiled_grad, full_grad, rtol=1e-10, atol=1e-12)


def test_gaussian_mmd_is_translation_and_scale_invariant_with_auto_sigma():
    base = value("mmd-gaussian")
    assert value("mmd-gaussian", feats=OUTPUT + 3.0, style=STYLE + 3.0) == pytest.approx(base, rel=1e-10)
    assert value("mmd-gaussian", feats=OUTPUT * 4.0, style=STYLE * 4.0) == pytest.approx(base, rel=1e-10)


def test_moments_equal_their_formula():
    style = columns(STYLE)[0]
    expected = sum(((f.mean(1) - style.mean(1)) ** 2 + (f.std(1) - style.std(1)) ** 2).sum()
                   for f in columns(OUTPUT)) / CHANNELS  # numpy's std is the biased one
    assert value("moments", eps=0) == pytest.approx(expected, rel=1e-12)


def test_moments_of_adain_output_match_the_style():
    from gatys.norm import adain

    loss = losses.create("moments", eps=0)
    assert loss(adain(OUTPUT, STYLE, eps=0), loss.target(STYLE)).item() == pytest.approx(0, abs=1e-24)
    # with AdaIN's eps the means still match exactly and σ_out = σ_S·σ_F/sqrt(σ_F² + eps)
    eps = 1e-5
    mean, std = functional.channel_moments(adain(OUTPUT, STYLE, eps=eps))
    style_mean, style_std = functional.channel_moments(STYLE)
    output_std = functional.channel_moments(OUTPUT)[1]
    torch.testing.assert_close(mean, style_mean.expand_as(mean), rtol=0, atol=1e-12)
    torch.testing.assert_close(std, style_std * output_std / torch.sqrt(output_std**2 + eps), rtol=1e-12, atol=0)


def w2_reference(f, s, eps):
    _, mean_f, cov_f = moments_of(f)
    _, mean_s, cov_s = moments_of(s)
    cov_f, cov_s = cov_f + eps * np.eye(len(cov_f)), cov_s + eps * np.eye(len(cov_s))
    root_s = scipy.linalg.sqrtm(cov_s).real
    cross = scipy.linalg.sqrtm(root_s @ cov_f @ root_s).real
    return (((mean_f - mean_s) ** 2).sum() + np.trace(cov_f + cov_s - 2 * cross)) / len(mean_f)


@pytest.mark.parametrize("eps", [1e-4, 0.0])
def test_w2_equals_scipy_sqrtm_reference(eps):
    expected = sum(w2_reference(f, columns(STYLE)[0], eps) for f in columns(OUTPUT))
    assert value("w2", eps=eps) == pytest.approx(expected, rel=1e-9)


def test_w2_is_zero_against_itself_and_positive_otherwise():
    single = OUTPUT[:1]
    assert abs(value("w2", feats=single, style=single)) < 1e-10 * value("w2", feats=single)
    assert value("w2", feats=single) > 0


def concatenated(*feats):
    """One (1, C, 1, ΣM) map holding the positions of all the maps: the mixture of the styles."""
    return torch.cat([f.flatten(2) for f in feats], dim=2).unsqueeze(2)


@pytest.mark.parametrize("spec", ["moments", "w2"])
def test_blend_is_the_mixture_of_the_styles(spec):
    other = features(7, height=3, width=4)
    loss = losses.create(spec)
    sizes = [STYLE[0, 0].numel(), other[0, 0].numel()]
    blended = loss.blend([loss.target(STYLE), loss.target(other)], [s / 10 for s in sizes])  # any scale
    mixture = loss.target(concatenated(STYLE, other))
    assert loss(OUTPUT, blended).item() == pytest.approx(loss(OUTPUT, mixture).item(), rel=1e-10)


def per_channel_sorted_matching(f, s):
    """Mean over channels and ranks of (sort f_i − Q_i)², Q_i the style's quantiles at (k + ½)/M_F."""
    count = f.shape[1]
    where = (np.arange(count) + 0.5) * s.shape[1] / count - 0.5
    quantiles = [np.interp(where, np.arange(s.shape[1]), np.sort(row)) for row in s]
    return np.mean([(np.sort(row) - q) ** 2 for row, q in zip(f, quantiles)])


@pytest.mark.parametrize("style", [STYLE, features(8, height=7, width=6)], ids=["unequal", "equal"])
def test_sliced_wasserstein_on_the_standard_basis_is_per_channel_sorted_matching(style):
    basis = torch.eye(CHANNELS, dtype=torch.float64)
    target = functional.resample_quantiles(functional.sorted_projections(functional.style_positions(style), basis),
                                           OUTPUT[0, 0].numel())
    got = functional.sliced_wasserstein(functional.position_columns(OUTPUT), target, basis).sum()
    expected = sum(per_channel_sorted_matching(f, columns(style)[0]) for f in columns(OUTPUT))
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_sliced_wasserstein_loss_uses_its_directions():
    loss = losses.create("swd", projections=7, seed=4)
    directions = loss.directions(CHANNELS, OUTPUT).numpy()
    assert directions.shape == (7, CHANNELS)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1, rtol=1e-12)
    expected = sum(per_channel_sorted_matching(directions @ f, directions @ columns(STYLE)[0])
                   for f in columns(OUTPUT))
    assert loss(OUTPUT, loss.target(STYLE)).item() == pytest.approx(expected, rel=1e-12)


def test_gram_can_be_zero_while_means_differ():
    """Ĝ = Σ + μμᵀ: F and −F share Ĝ (and Σ) but have opposite means, so the Gram loss is blind
    to what mean-only (mmd-linear) and moment losses see: Gram and mean matching differ."""
    raw, mean, cov = moments_of(columns(OUTPUT)[0])
    np.testing.assert_allclose(raw, cov + np.outer(mean, mean), rtol=1e-12, atol=1e-14)
    single = OUTPUT[:1]
    assert value("gram", feats=-single, style=single) == pytest.approx(0, abs=1e-28)
    assert value("mmd-linear", feats=-single, style=single) == pytest.approx(4 * (mean**2).sum() / CHANNELS,
                                                                              rel=1e-12)
    assert value("moments", feats=-single, style=single) > 0
