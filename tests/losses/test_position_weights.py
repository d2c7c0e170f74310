"""Position weights (masks) in the style-loss contract, for every registered loss, in float64.

A 0/1 mask must give the loss of the selected positions alone; uniform weights the unweighted
loss; integer weights the loss of the positions repeated that many times (for the statistics
that are means over positions); soft weights a brute-force reference written out in numpy.
Output and style have different numbers of positions so that a wrong normalisation cannot hide.
"""
import numpy as np
import pytest
import torch

import losses
from losses import functional
from losses.base import StyleLoss, check_weights, require_position_weights, supports_position_weights

CHANNELS = 5
TILED = 4  # a tile smaller than the row counts: exercises the mirrored and edge tiles

# (spec, tile or None): every code path of every registered loss
SPECS = [
    ("gram", None),
    ("moments", None),
    ("mmd-linear", None),
    ("mmd-poly", None),  # d = 2, c = 0: the Gram identity
    ("mmd-poly:c=1", None),  # d = 2 with the mean term
    ("mmd-poly:d=3,c=0.5", None),
    ("mmd-poly:d=3,c=0.5", TILED),
    ("mmd-gaussian", None),  # biased, sigma=auto
    ("mmd-gaussian", TILED),
    ("mmd-gaussian:sigma=1.5", None),
    ("mmd-gaussian:sigma=auto+2", None),
    ("mmd-gaussian:estimator=unbiased", None),
    ("mmd-gaussian:estimator=unbiased,sigma=auto+2", TILED),
    ("mmd-gaussian:estimator=linear", None),
    ("mmd-gaussian:estimator=linear,sigma=1.5", None),
    ("mmd-gaussian:samples=12,seed=3", None),
    ("mmd-gaussian:samples=12,seed=3,estimator=unbiased", None),
    ("mmd-gaussian:sigma=li2017,estimator=linear,seed=2", None),
    ("w2", None),
    ("sliced-wasserstein", None),
    ("sliced-wasserstein:projections=9,seed=4", None),
]
IDS = [spec + ("" if tile is None else f",tile={tile}") for spec, tile in SPECS]
# the losses whose statistics are means over positions: integer weights are repetitions
REPEATABLE = [(spec, tile) for spec, tile in SPECS
              if spec.split(":")[0] in ("gram", "moments", "mmd-linear", "mmd-poly", "w2")
              or (spec.startswith("mmd-gaussian") and "estimator" not in spec and "samples" not in spec)]


def features(seed, height=5, width=7, batch=1, channels=CHANNELS):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, height, width, generator=generator, dtype=torch.float64)


OUTPUT = features(0, batch=2)  # two images: each batch item has its own weights, or shares one map
STYLE = features(1, height=6, width=4)


def make(spec, tile=None):
    loss = losses.create(spec)
    if tile is not None:
        loss.tile = tile
    return loss


def mask(seed, shape, keep=0.6):
    """A 0/1 float mask (batch, 1, H, W) with at least three positions on in every item."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        chosen = (torch.rand(shape, generator=generator, dtype=torch.float64) < keep).double()
        if (chosen.flatten(1).sum(1) >= 3).all():
            return chosen


def soft(seed, shape, zeros=0.3):
    """Soft weights in (0.1, 2) with about `zeros` of the positions at exactly 0."""
    generator = torch.Generator().manual_seed(seed)
    weights = 0.1 + 1.9 * torch.rand(shape, generator=generator, dtype=torch.float64)
    weights[torch.rand(shape, generator=generator, dtype=torch.float64) < zeros] = 0
    return weights


def selected(feats, weights):
    """The positions of weight > 0 of one image (1, C, H, W) as a (1, C, 1, M_sel) map, in row-major order."""
    keep = weights.reshape(-1) > 0
    return feats.flatten(2)[:, :, keep].unsqueeze(2)


def repeated(feats, counts):
    """Each position of one image repeated counts[p] times, as a (1, C, 1, Σcounts) map."""
    index = torch.repeat_interleave(torch.arange(counts.numel()), counts.reshape(-1).long())
    return feats.flatten(2)[:, :, index].unsqueeze(2)


def per_item(loss, target, feats, weights, transform):
    """Σ over batch items of the unweighted loss of transform(item, its weights) against target."""
    return sum(loss(transform(feats[i : i + 1], weights[min(i, len(weights) - 1)]), target)
               for i in range(len(feats)))


def test_every_registered_loss_is_covered_and_takes_weights():
    built_in = [name for name in losses.available() if losses.registry.resolve(name).__module__.startswith("losses.")]
    assert set(built_in) <= {spec.split(":")[0] for spec, _ in SPECS}
    for name in built_in:
        assert losses.registry.resolve(name).position_weights is True
        assert supports_position_weights(losses.create(name))
        require_position_weights(losses.create(name))  # does not raise
    assert StyleLoss.position_weights is False


# -- 1. 0/1 masks select positions ---------------------------------------------------------


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
@pytest.mark.parametrize("output_batch", [1, 2], ids=["shared-mask", "mask-per-item"])
def test_binary_output_mask_is_the_loss_of_the_selected_positions(spec, tile, output_batch):
    weights = mask(10, (output_batch, 1, 5, 7))
    loss = make(spec, tile)
    target = loss.target(STYLE)
    expected = per_item(loss, target, OUTPUT, weights, selected)
    assert loss(OUTPUT, target, weights).item() == pytest.approx(expected.item(), rel=1e-10)


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_binary_style_mask_is_the_target_of_the_selected_positions(spec, tile):
    weights = mask(11, (1, 1, 6, 4))
    loss = make(spec, tile)
    expected = loss(OUTPUT, loss.target(selected(STYLE, weights[0])))
    assert loss(OUTPUT, loss.target(STYLE, weights)).item() == pytest.approx(expected.item(), rel=1e-10)


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_binary_masks_on_both_sides(spec, tile):
    output_weights, style_weights = mask(12, (2, 1, 5, 7)), mask(13, (1, 1, 6, 4))
    loss = make(spec, tile)
    expected = per_item(loss, loss.target(selected(STYLE, style_weights[0])), OUTPUT, output_weights, selected)
    got = loss(OUTPUT, loss.target(STYLE, weights=style_weights), weights=output_weights)
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_a_mask_over_a_batch_of_styles_selects_from_all_of_them(spec, tile):
    styles = torch.cat([STYLE, features(2, height=6, width=4)])
    weights = mask(14, (2, 1, 6, 4))
    loss = make(spec, tile)
    pooled = torch.cat([selected(styles[i : i + 1], weights[i]) for i in range(2)], dim=3)
    expected = loss(OUTPUT, loss.target(pooled))
    assert loss(OUTPUT, loss.target(styles, weights)).item() == pytest.approx(expected.item(), rel=1e-10)


# -- 2. uniform weights are no weights -------------------------------------------------------


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
@pytest.mark.parametrize("level", [1.0, 0.3])
def test_uniform_weights_give_the_unweighted_loss(spec, tile, level):
    loss = make(spec, tile)
    output_weights = torch.full((1, 1, 5, 7), level, dtype=torch.float64)
    style_weights = torch.full((1, 1, 6, 4), level, dtype=torch.float64)
    expected = loss(OUTPUT, loss.target(STYLE)).item()
    for got in (loss(OUTPUT, loss.target(STYLE), output_weights),
                loss(OUTPUT, loss.target(STYLE, style_weights)),
                loss(OUTPUT, loss.target(STYLE, style_weights), output_weights),
                loss.scaled(OUTPUT * 2.0, 2.0, loss.target(STYLE, style_weights), output_weights)):
        assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("spec", ["gram", "mmd-poly"])
def test_unit_weights_give_the_gram_losses_exactly(spec):
    loss = losses.create(spec)
    ones_output, ones_style = torch.ones(1, 1, 5, 7, dtype=torch.float64), torch.ones(1, 1, 6, 4, dtype=torch.float64)
    target = loss.target(STYLE)
    raw_moment = (lambda t: t) if spec == "gram" else (lambda t: t.raw_moment)
    assert torch.equal(raw_moment(loss.target(STYLE, ones_style)), raw_moment(target))
    assert torch.equal(loss(OUTPUT, target, ones_output), loss(OUTPUT, target))
    assert torch.equal(loss.scaled(OUTPUT, 3.0, target, ones_output), loss.scaled(OUTPUT, 3.0, target))


# -- 3. no gradient where the weight is zero -------------------------------------------------


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_gradient_is_zero_exactly_where_the_weight_is(spec, tile):
    weights = soft(20, (2, 1, 5, 7))
    loss = make(spec, tile)
    feats = OUTPUT.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(feats, loss.target(STYLE, soft(21, (1, 1, 6, 4))), weights), feats)
    off = (weights == 0).expand_as(grad)
    assert off.any() and (grad[off] == 0).all()
    assert (grad[~off] != 0).any()


# -- 4. soft weights against brute force -----------------------------------------------------


def rows_and_weights(feats, weights):
    """Per image: its positions as an (M, C) numpy array and their weights (M,)."""
    return [(feats[i].reshape(feats.shape[1], -1).T.numpy(), weights[min(i, len(weights) - 1)].reshape(-1).numpy())
            for i in range(len(feats))]


def weighted_moments(x, w):
    """(Σ w x xᵀ/Σw, Σ w x/Σw, Σ w (x − μ)(x − μ)ᵀ/Σw) by an explicit loop over the positions."""
    total = w.sum()
    raw = sum(w_p * np.outer(x_p, x_p) for x_p, w_p in zip(x, w)) / total
    mean = sum(w_p * x_p for x_p, w_p in zip(x, w)) / total
    cov = sum(w_p * np.outer(x_p - mean, x_p - mean) for x_p, w_p in zip(x, w)) / total
    return raw, mean, cov


def weighted_kernel_mean(x, a, y, b, kernel, diagonal=True):
    """Σ_ij a_i b_j k(x_i, y_j), by a double loop (i = j left out unless diagonal)."""
    return sum(a_i * b_j * kernel(x_i, y_j) for i, (x_i, a_i) in enumerate(zip(x, a))
               for j, (y_j, b_j) in enumerate(zip(y, b)) if diagonal or i != j)


OUTPUT_WEIGHTS = soft(30, (2, 1, 5, 7))
STYLE_WEIGHTS = soft(31, (1, 1, 6, 4))
STYLE_ROWS = rows_and_weights(STYLE, STYLE_WEIGHTS)[0]


def weighted_value(spec):
    loss = losses.create(spec)
    return loss(OUTPUT, loss.target(STYLE, STYLE_WEIGHTS), OUTPUT_WEIGHTS).item()


def test_gram_soft_weights_equal_brute_force():
    style_raw = weighted_moments(*STYLE_ROWS)[0]
    expected = sum(((weighted_moments(x, w)[0] - style_raw) ** 2).sum()
                   for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS)) / (4 * CHANNELS**2)
    assert weighted_value("gram") == pytest.approx(expected, rel=1e-12)
    assert weighted_value("mmd-poly") == pytest.approx(expected, rel=1e-10)


def test_moments_soft_weights_equal_brute_force():
    _, style_mean, style_cov = weighted_moments(*STYLE_ROWS)
    expected = 0.0
    for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS):
        _, mean, cov = weighted_moments(x, w)
        expected += (((mean - style_mean) ** 2).sum()
                     + ((np.sqrt(np.diag(cov) + 1e-5) - np.sqrt(np.diag(style_cov) + 1e-5)) ** 2).sum()) / CHANNELS
    assert weighted_value("moments") == pytest.approx(expected, rel=1e-12)


def test_mmd_linear_and_poly_with_offset_soft_weights_equal_brute_force():
    style_raw, style_mean, _ = weighted_moments(*STYLE_ROWS)
    linear = poly = 0.0
    for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS):
        raw, mean, _ = weighted_moments(x, w)
        linear += ((mean - style_mean) ** 2).sum() / CHANNELS
        poly += (((raw - style_raw) ** 2).sum() + 2 * ((mean - style_mean) ** 2).sum()) / (4 * CHANNELS**2)
    assert weighted_value("mmd-linear") == pytest.approx(linear, rel=1e-12)
    assert weighted_value("mmd-poly:c=1") == pytest.approx(poly, rel=1e-12)


def w2_reference(x, w, y, v, eps=1e-4):
    import scipy.linalg

    _, mean_x, cov_x = weighted_moments(x, w)
    _, mean_y, cov_y = weighted_moments(y, v)
    cov_x, cov_y = cov_x + eps * np.eye(CHANNELS), cov_y + eps * np.eye(CHANNELS)
    root = scipy.linalg.sqrtm(cov_y).real
    cross = scipy.linalg.sqrtm(root @ cov_x @ root).real
    return (((mean_x - mean_y) ** 2).sum() + np.trace(cov_x + cov_y - 2 * cross)) / CHANNELS


def test_w2_soft_weights_equal_scipy_reference():
    expected = sum(w2_reference(x, w, *STYLE_ROWS) for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS))
    assert weighted_value("w2") == pytest.approx(expected, rel=1e-9)


def brute_weighted_mmd(x, w, y, v, kernel, estimator="biased"):
    a, b = w / w.sum(), v / v.sum()
    cross = weighted_kernel_mean(x, a, y, b, kernel)
    if estimator == "biased":
        return weighted_kernel_mean(x, a, x, a, kernel) + weighted_kernel_mean(y, b, y, b, kernel) - 2 * cross
    return (weighted_kernel_mean(x, a, x, a, kernel, diagonal=False) / (1 - (a**2).sum())
            + weighted_kernel_mean(y, b, y, b, kernel, diagonal=False) / (1 - (b**2).sum()) - 2 * cross)


@pytest.mark.parametrize("tile", [None, TILED])
def test_mmd_poly_degree_three_soft_weights_equal_brute_force(tile):
    loss = make("mmd-poly:d=3,c=0.5", tile)
    expected = sum(brute_weighted_mmd(x, w, *STYLE_ROWS, lambda p, q: (p @ q + 0.5) ** 3)
                   for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS)) / (4 * CHANNELS**2)
    got = loss(OUTPUT, loss.target(STYLE, STYLE_WEIGHTS), OUTPUT_WEIGHTS).item()
    assert got == pytest.approx(expected, rel=1e-10)


def weighted_auto_gamma(y, v):
    """1/(2σ²) with 2σ² the weighted mean squared distance Σ_ij b_i b_j ‖y_i − y_j‖², by a double loop."""
    b = v / v.sum()
    return 1 / weighted_kernel_mean(y, b, y, b, lambda p, q: ((p - q) ** 2).sum())


@pytest.mark.parametrize("tile", [None, TILED])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
@pytest.mark.parametrize("sigma", ["auto", 1.5, ["auto", 2.0]], ids=["auto", "number", "list"])
def test_mmd_gaussian_soft_weights_equal_brute_force(sigma, estimator, tile):
    loss = make(f"mmd-gaussian:estimator={estimator}", tile)
    loss.sigmas = tuple(sigma) if isinstance(sigma, list) else (sigma,)
    gammas = [weighted_auto_gamma(*STYLE_ROWS) if s == "auto" else 0.5 / s**2 for s in loss.sigmas]

    def kernel(p, q):
        return sum(np.exp(-gamma * ((p - q) ** 2).sum()) for gamma in gammas)

    expected = sum(brute_weighted_mmd(x, w, *STYLE_ROWS, kernel, estimator)
                   for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS)) / CHANNELS
    got = loss(OUTPUT, loss.target(STYLE, STYLE_WEIGHTS), OUTPUT_WEIGHTS).item()
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_mmd_gaussian_samples_with_soft_weights_use_the_subset_s_weights(estimator):
    seed, samples = 4, 12
    loss = losses.create(f"mmd-gaussian:estimator={estimator},samples={samples},seed={seed}")
    gamma = weighted_auto_gamma(*STYLE_ROWS)  # from every style position, weighted

    def kernel(p, q):
        return np.exp(-gamma * ((p - q) ** 2).sum())

    def subset(x, w, stream):
        # positions of weight 0 dropped, then the loss's fixed random subset of the rest
        x, w = x[w > 0], w[w > 0]
        chosen = functional.random_indices(len(x), samples, 2 * seed + stream).numpy()
        return x[chosen], w[chosen]

    y, v = subset(*STYLE_ROWS, stream=1)
    expected = sum(brute_weighted_mmd(*subset(x, w, stream=0), y, v, kernel, estimator)
                   for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS)) / CHANNELS
    got = loss(OUTPUT, loss.target(STYLE, STYLE_WEIGHTS), OUTPUT_WEIGHTS).item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_mmd_gaussian_linear_soft_weights_are_the_importance_weighted_mean():
    seed, sigma = 5, 1.5
    loss = losses.create(f"mmd-gaussian:estimator=linear,sigma={sigma},seed={seed}")

    def kernel(p, q):
        return np.exp(-0.5 / sigma**2 * ((p - q) ** 2).sum())

    def ordered(x, w, stream):
        # positions of weight 0 dropped, then the loss's fixed random order over the rest
        x, w = x[w > 0], w[w > 0]
        order = functional.random_indices(len(x), None, 2 * seed + stream).numpy()
        return x[order], w[order]

    y, v = ordered(*STYLE_ROWS, stream=1)
    expected = 0.0
    for x, w in rows_and_weights(OUTPUT, OUTPUT_WEIGHTS):
        x, w = ordered(x, w, stream=0)
        terms = []
        for p in range(min(len(x), len(y)) // 2):
            h = (kernel(x[2 * p], x[2 * p + 1]) + kernel(y[2 * p], y[2 * p + 1])
                 - kernel(x[2 * p], y[2 * p + 1]) - kernel(x[2 * p + 1], y[2 * p]))
            terms.append((w[2 * p] * w[2 * p + 1] * v[2 * p] * v[2 * p + 1], h))
        expected += sum(omega * h for omega, h in terms) / sum(omega for omega, _ in terms) / CHANNELS
    got = loss(OUTPUT, loss.target(STYLE, STYLE_WEIGHTS), OUTPUT_WEIGHTS).item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_weighted_tiled_kernel_sum_and_gradient_equal_the_full_matrix():
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(11, CHANNELS, generator=generator, dtype=torch.float64).requires_grad_(True)
    y = torch.randn(9, CHANNELS, generator=generator, dtype=torch.float64).requires_grad_(True)
    a = torch.rand(11, generator=generator, dtype=torch.float64)
    b = torch.rand(9, generator=generator, dtype=torch.float64)
    def gaussians(*gammas):
        return lambda p, q: sum(torch.exp(-gamma * (p[:, None] - q[None]).square().sum(2)) for gamma in gammas)

    gammas = torch.tensor([0.05, 0.3], dtype=torch.float64)
    for kernel, full in [(functional.GaussianKernel(gammas), gaussians(0.05, 0.3)),
                         (functional.GaussianKernel(gammas[:1]), gaussians(0.05)),
                         (functional.PolynomialKernel(0.5, 3), lambda p, q: (p @ q.T + 0.5).pow(3))]:
        for tile in (1, 4, 64):
            for other, other_weights, inputs in ((None, None, (x,)), (y, b, (x, y))):
                tiled = functional.kernel_sum(x, other, kernel, tile, a, other_weights)
                matrix = full(x, x if other is None else other)
                reference = a @ matrix @ (a if other is None else b)
                assert tiled.item() == pytest.approx(reference.item(), rel=1e-12)
                for got, want in zip(torch.autograd.grad(tiled, inputs), torch.autograd.grad(reference, inputs)):
                    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


# -- 5. gradcheck ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["gram", "moments", "mmd-linear", "mmd-poly:c=1", "mmd-poly:d=3,c=0.5",
                                  "mmd-gaussian", "mmd-gaussian:estimator=unbiased", "w2", "sliced-wasserstein"])
def test_gradcheck_with_soft_weights(spec):
    loss = losses.create(spec)
    target = loss.target(features(1, height=3, width=4, channels=3), soft(40, (1, 1, 3, 4), zeros=0.2))
    weights = soft(41, (1, 1, 3, 3), zeros=0.2)
    feats = features(0, height=3, width=3, channels=3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: loss(f, target, weights), (feats,))


# -- 6. weights=None is the unweighted code ------------------------------------------------


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_weights_none_is_bit_identical_to_no_argument(spec, tile):
    loss = make(spec, tile)
    target = loss.target(STYLE)
    explicit = loss.target(STYLE, weights=None)
    plain, given = OUTPUT.clone().requires_grad_(True), OUTPUT.clone().requires_grad_(True)
    value, value_none = loss(plain, target), loss(given, explicit, weights=None)
    value.backward()
    value_none.backward()
    assert torch.equal(value, value_none)
    assert torch.equal(plain.grad, given.grad)
    assert torch.equal(loss.scaled(OUTPUT, 2.5, target), loss.scaled(OUTPUT, 2.5, explicit, weights=None))


def test_weights_none_gram_is_the_unweighted_formula_bit_for_bit():
    loss = losses.create("gram")
    positions = STYLE[0].flatten(1)
    target = positions @ positions.T / positions.shape[1]
    assert torch.equal(loss.target(STYLE, None), target)
    expected = (functional.gram_matrix(OUTPUT) - target).square().sum() / (4 * CHANNELS**2)
    assert torch.equal(loss(OUTPUT, target, None), expected)


# -- 7. bad weights --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [spec for spec, _ in SPECS[::3]])
@pytest.mark.parametrize("weights, match", [
    (torch.ones(1, 1, 5, 6, dtype=torch.float64), r"\(1 or 2, 1, 5, 7\) tensor"),
    (torch.ones(1, 2, 5, 7, dtype=torch.float64), r"\(1 or 2, 1, 5, 7\) tensor"),
    (torch.ones(3, 1, 5, 7, dtype=torch.float64), r"\(1 or 2, 1, 5, 7\) tensor"),
    (torch.ones(5, 7, dtype=torch.float64), r"got \(5, 7\)"),
    (torch.ones(1, 1, 5, 7, dtype=torch.float64) * torch.tensor(-1.0), "non-negative"),
    (torch.full((1, 1, 5, 7), float("nan"), dtype=torch.float64), "finite and non-negative"),
    (torch.zeros(1, 1, 5, 7, dtype=torch.float64), "sum to zero"),
    (torch.cat([torch.ones(1, 1, 5, 7), torch.zeros(1, 1, 5, 7)]).double(), "sum to zero for a batch item"),
], ids=["grid", "channels", "batch", "2-d", "negative", "nan", "zero", "one-item-zero"])
def test_bad_output_weights_are_refused(spec, weights, match):
    loss = losses.create(spec)
    target = loss.target(STYLE)
    with pytest.raises(ValueError, match=match):
        loss(OUTPUT, target, weights)


@pytest.mark.parametrize("spec", [spec for spec, _ in SPECS[1::3]])
def test_bad_style_weights_are_refused(spec):
    loss = losses.create(spec)
    with pytest.raises(ValueError, match=r"\(1, 1, 6, 4\) tensor"):
        loss.target(STYLE, torch.ones(1, 1, 4, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative"):
        loss.target(STYLE, -torch.ones(1, 1, 6, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="sum to zero: no position"):
        loss.target(STYLE, torch.zeros(1, 1, 6, 4, dtype=torch.float64))
    # a batch of styles is one sample: one image may be masked out entirely
    styles = torch.cat([STYLE, features(2, height=6, width=4)])
    loss.target(styles, torch.cat([torch.zeros(1, 1, 6, 4), torch.ones(1, 1, 6, 4)]).double())


def test_check_weights_messages_are_one_line():
    for weights in (torch.ones(2, 2, 2, 2), -torch.ones(1, 1, 5, 7), torch.zeros(1, 1, 5, 7)):
        with pytest.raises(ValueError) as caught:
            check_weights(weights, OUTPUT)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("spec", ["mmd-gaussian:estimator=unbiased", "mmd-gaussian:estimator=linear"])
def test_estimators_that_need_two_positions_say_so(spec):
    loss = losses.create(spec)
    one = torch.zeros(1, 1, 5, 7, dtype=torch.float64)
    one[0, 0, 2, 3] = 1
    with pytest.raises(ValueError, match="at least 2 positions of positive weight"):
        loss(OUTPUT, loss.target(STYLE), one)
    with pytest.raises(ValueError, match="at least 2 positions of positive weight"):
        loss.target(OUTPUT[:1], one)


def test_a_third_party_loss_without_weights_is_refused_by_name():
    class Plain(StyleLoss):
        name = "plain"

        def target(self, feats):
            return feats.mean()

        def forward(self, feats, target):
            return (feats.mean() - target).square()

    loss = Plain()
    assert not supports_position_weights(loss)
    with pytest.raises(ValueError, match=r"style loss 'plain' does not take position weights \(masks\): it must set "
                                         r"position_weights = True and accept weights= in target\(\) and forward\(\)"):
        require_position_weights(loss)
    # without weights the base class's scaled() still calls it the old way
    assert loss.scaled(OUTPUT, 2.0, loss.target(STYLE)).item() == pytest.approx(
        loss(OUTPUT / 2.0, loss.target(STYLE)).item(), rel=1e-12)


# -- 8. integer weights are repetitions; sliced Wasserstein's weighted quantiles --------------

OUTPUT_COUNTS = torch.randint(0, 4, (2, 1, 5, 7), generator=torch.Generator().manual_seed(50)).double()
STYLE_COUNTS = torch.randint(0, 4, (1, 1, 6, 4), generator=torch.Generator().manual_seed(51)).double()


@pytest.mark.parametrize("spec, tile", REPEATABLE, ids=[IDS[SPECS.index(case)] for case in REPEATABLE])
def test_integer_weights_are_repeated_positions(spec, tile):
    loss = make(spec, tile)
    expected = per_item(loss, loss.target(repeated(STYLE, STYLE_COUNTS)), OUTPUT, OUTPUT_COUNTS, repeated)
    got = loss(OUTPUT, loss.target(STYLE, STYLE_COUNTS), OUTPUT_COUNTS)
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def sliced_reference(loss, feats, weights, style, style_weights):
    """The weighted-quantile sliced W2², in numpy: for each direction, Σ_p a_p (x_(p) − Q_S(u_p))² with
    u_p = C_p − a_p/2, Q_S through the style's sorted projections at their own mid-points (np.interp)."""
    directions = loss.directions(CHANNELS, feats).numpy()
    y, v = rows_and_weights(style, style_weights)[0]
    total = 0.0
    for x, w in rows_and_weights(feats, weights):
        per_direction = []
        for direction in directions:
            fx, fy = x[w > 0] @ direction, y[v > 0] @ direction
            a, b = w[w > 0] / w.sum(), v[v > 0] / v.sum()
            ox, oy = np.argsort(fx), np.argsort(fy)
            a_sorted, b_sorted = a[ox], b[oy]
            u = np.cumsum(a_sorted) - a_sorted / 2
            style_points = np.cumsum(b_sorted) - b_sorted / 2
            quantiles = np.interp(u, style_points, fy[oy])
            per_direction.append((a_sorted * (fx[ox] - quantiles) ** 2).sum())
        total += np.mean(per_direction)
    return total


@pytest.mark.parametrize("spec", ["sliced-wasserstein", "sliced-wasserstein:projections=9,seed=4"])
@pytest.mark.parametrize("sides", ["output", "style", "both"])
def test_sliced_wasserstein_soft_weights_equal_the_weighted_quantile_reference(spec, sides):
    loss = losses.create(spec)
    output_weights = OUTPUT_WEIGHTS if sides != "style" else torch.ones(1, 1, 5, 7, dtype=torch.float64)
    style_weights = STYLE_WEIGHTS if sides != "output" else torch.ones(1, 1, 6, 4, dtype=torch.float64)
    expected = sliced_reference(loss, OUTPUT, output_weights, STYLE, style_weights)
    target = loss.target(STYLE, None if sides == "output" else style_weights)
    got = loss(OUTPUT, target, None if sides == "style" else output_weights)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_sliced_wasserstein_weighted_output_against_its_own_repetition_is_zero():
    """Integer weights on the output read the repeated style inside each run of equal values: zero.

    (Integer weights are not repetitions in general for the sliced loss: a sample of weight 2 is
    compared with Q_S at its run's mid-point, the repeated samples with Q_S at the run's two points.)
    """
    loss = losses.create("sliced-wasserstein:projections=9")
    counts = OUTPUT_COUNTS[:1] + 1
    own = repeated(OUTPUT[:1], counts)
    assert abs(loss(OUTPUT[:1], loss.target(own), counts).item()) < 1e-24
    assert loss(OUTPUT[:1], loss.target(own)).item() > 1e-3


@pytest.mark.parametrize("spec", ["gram", "moments", "mmd-linear", "mmd-poly:d=3", "mmd-gaussian", "w2",
                                  "sliced-wasserstein"])
def test_zero_against_its_own_weighted_target(spec):
    loss = losses.create(spec)
    single, weights = OUTPUT[:1], OUTPUT_WEIGHTS[:1]
    scale = loss(single, loss.target(STYLE, STYLE_WEIGHTS), weights).item()
    assert abs(loss(single, loss.target(single, weights), weights).item()) <= 1e-9 * scale


# -- blending, caching, dtype ----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["moments", "w2"])
def test_weighted_targets_blend_into_the_weighted_mixture(spec):
    other, other_weights = features(7, height=3, width=4), soft(52, (1, 1, 3, 4))
    loss = losses.create(spec)
    totals = [float(STYLE_WEIGHTS.sum()), float(other_weights.sum())]
    blended = loss.blend([loss.target(STYLE, STYLE_WEIGHTS), loss.target(other, other_weights)], totals)
    mixture = loss.target(torch.cat([STYLE.flatten(2), other.flatten(2)], 2).unsqueeze(2),
                          torch.cat([STYLE_WEIGHTS.flatten(2), other_weights.flatten(2)], 2).unsqueeze(2))
    assert loss(OUTPUT, blended, OUTPUT_WEIGHTS).item() == pytest.approx(loss(OUTPUT, mixture, OUTPUT_WEIGHTS).item(),
                                                                         rel=1e-10)


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_new_weights_are_read_again_and_the_same_weights_give_the_same_value(spec, tile):
    loss = make(spec, tile)
    target = loss.target(STYLE)
    first, second = soft(60, (1, 1, 5, 7)), soft(61, (1, 1, 5, 7))
    value = loss(OUTPUT, target, first).item()
    assert loss(OUTPUT, target, first).item() == value
    fresh = make(spec, tile)
    assert loss(OUTPUT, target, second).item() == fresh(OUTPUT, fresh.target(STYLE), second).item()


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_float32_weights_with_float32_features_and_bool_masks(spec, tile):
    loss = make(spec, tile)
    weights = mask(70, (1, 1, 5, 7))
    expected = loss(OUTPUT, loss.target(STYLE), weights).item()
    got = loss(OUTPUT.float(), loss.target(STYLE.float()), weights.float())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)  # unbiased MMD² can be near zero
    assert loss(OUTPUT, loss.target(STYLE), weights.bool()).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("spec, tile", SPECS, ids=IDS)
def test_weights_made_under_inference_mode_can_be_used_with_autograd(spec, tile):
    loss = make(spec, tile)
    target = loss.target(STYLE, STYLE_WEIGHTS)
    with torch.inference_mode():
        weights = OUTPUT_WEIGHTS.clone()
    feats = OUTPUT.clone().requires_grad_(True)
    loss(feats, target, weights).backward()
    assert feats.grad is not None
