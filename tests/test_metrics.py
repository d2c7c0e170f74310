"""gatys.metrics: content fidelity and the copied-object score, on constructed cases whose truth is known.

The formulas are checked against independent float64 references (numpy's corrcoef, scipy's Sobel,
scikit-image's SSIM when installed, a brute-force loop for the block NCC); the scores against pictures
built from the sample paintings: the content itself, noisier and blurrier versions of it, the style's
brushwork as shuffled tiles (no object) and the same with the style's face pasted in.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from benchmarks.copy_cases import FACES, between_scales, face_crop, paste, shuffled_tiles
from gatys.errors import GatysError
from gatys.images import load_image, resize
from gatys.metrics import (COPY_THRESHOLD, content_fidelity, copied_object_score, find_copied_object,
                           luminance_ssim)
from gatys.metrics.copying import (STYLE_SCALES, ScaleMatches, best_and_runner_up, distinctiveness, match_scores,
                                   output_templates)
from gatys.metrics.fidelity import luminance, pearson, sobel_magnitude, ssim_map

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"  # bundled, with their credits
VERMEER = "vermeer_pearl_earring.jpg"
# Searching only the scales a case needs keeps each search well under a second.
NEAR_ONE = (2 ** (-1 / 6), 1.0, 2 ** (1 / 6))

@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return load_image(IMAGES / "sailboat.jpg", size=192)

@pytest.fixture(scope="module")
def other() -> torch.Tensor:
    """An unrelated picture of the content's shape."""
    return load_image(IMAGES / "astronaut.png", size=192)

@pytest.fixture(scope="module")
def style() -> torch.Tensor:
    return load_image(IMAGES / VERMEER, size=256)

@pytest.fixture(scope="module")
def texture(style: torch.Tensor) -> torch.Tensor:
    """The style's brushwork and colours without its objects: 4 px tiles of it shuffled, 128 px square."""
    return shuffled_tiles(style, (128, 128), tile=4)

def noisy(image: torch.Tensor, level: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    return (image + level * noise).clamp(0, 1)

def blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    array = ndimage.gaussian_filter(image.double().numpy(), sigma=(0, 0, sigma, sigma), mode="reflect")
    return torch.from_numpy(array).float()

# ---------------------------------------------------------------------------- fidelity: the formulas

def test_pearson_matches_numpy():
    generator = np.random.default_rng(0)
    first, second = generator.normal(size=(40, 30)), generator.normal(size=(40, 30))
    second += 0.5 * first
    assert pearson(torch.from_numpy(first), torch.from_numpy(second)) == pytest.approx(
        np.corrcoef(first.ravel(), second.ravel())[0, 1], abs=1e-12)

def test_pearson_of_a_constant_map_is_zero():
    assert pearson(torch.ones(10, 10), torch.rand(10, 10)) == 0.0

def test_sobel_magnitude_matches_scipy():
    grey = np.random.default_rng(1).random((20, 24))
    reference = np.hypot(ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=0))[1:-1, 1:-1] / 8
    ours = sobel_magnitude(torch.from_numpy(grey)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-12)

def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    generator = np.random.default_rng(2)
    first = generator.random((48, 40))
    second = np.clip(first + 0.2 * generator.normal(size=first.shape), 0, 1)
    reference = metrics.structural_similarity(first, second, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False)
    ours = ssim_map(torch.from_numpy(first)[None, None], torch.from_numpy(second)[None, None]).mean()
    assert float(ours) == pytest.approx(reference, abs=1e-6)

# ---------------------------------------------------------------------------- fidelity: the scores

def test_the_content_itself_scores_one(content):
    assert content_fidelity(content, content) == pytest.approx(1.0, abs=1e-9)
    assert luminance_ssim(content, content) == pytest.approx(1.0, abs=1e-9)

def test_fidelity_drops_monotonically_with_noise(content):
    levels = [0.02, 0.05, 0.1, 0.2, 0.4]
    fidelity = [content_fidelity(noisy(content, level), content) for level in levels]
    ssim = [luminance_ssim(noisy(content, level), content) for level in levels]
    assert all(a > b for a, b in zip(fidelity, fidelity[1:])), fidelity
    assert all(a > b for a, b in zip(ssim, ssim[1:])), ssim
    assert fidelity[0] > 0.99 and fidelity[-1] < 0.8  # pixel noise averages out at 128 px, partly

def test_fidelity_drops_monotonically_with_blur(content):
    sigmas = [1, 2, 4, 8]
    fidelity = [content_fidelity(blurred(content, sigma), content) for sigma in sigmas]
    assert all(a > b for a, b in zip(fidelity, fidelity[1:])), fidelity
    assert fidelity[0] > 0.9

def test_an_unrelated_picture_scores_near_zero(content, other):
    assert abs(content_fidelity(other, content)) < 0.2
    assert luminance_ssim(other, content) < 0.3

def test_fidelity_ignores_a_global_colour_shift(content):
    """Y → a·Y + b leaves every gradient magnitude scaled by a, which a correlation ignores."""
    shifted = 0.1 + 0.8 * content + torch.tensor([0.06, -0.04, 0.08]).view(1, 3, 1, 1)
    assert shifted.min() >= 0 and shifted.max() <= 1
    assert content_fidelity(shifted, content) == pytest.approx(1.0, abs=1e-3)

def test_fidelity_does_not_depend_on_the_sizes(content, texture):
    """A stylised stand-in (content blended with brushwork) scores the same at 96 and 192 px."""
    stand_in = 0.6 * content + 0.4 * resize(texture, shape=tuple(content.shape[-2:]))
    small_content, small_stand_in = resize(content, size=96), resize(stand_in, size=96)
    at_192 = content_fidelity(stand_in, content)
    assert content_fidelity(small_stand_in, small_content) == pytest.approx(at_192, abs=0.05)
    assert content_fidelity(stand_in, small_content) == pytest.approx(at_192, abs=0.05)
    assert content_fidelity(small_stand_in, content) == pytest.approx(at_192, abs=0.05)

def test_fidelity_refuses_a_different_framing(content):
    with pytest.raises(GatysError, match="aspect ratios"):
        content_fidelity(content[..., :96], content)

# ---------------------------------------------------------------------------- copying: the formula

def brute_force_scores(output: np.ndarray, style: np.ndarray, patch: int, grid: int, stride: int,
                       min_std: float) -> np.ndarray:
    """The mean block NCC of every kept output patch at every style position, by loops in float64."""
    block = patch // grid
    rows = (output.shape[0] - patch) // stride + 1
    cols = (output.shape[1] - patch) // stride + 1
    results = []
    for top in range(0, rows * stride, stride):
        for left in range(0, cols * stride, stride):
            blocks = [output[top + dy:top + dy + block, left + dx:left + dx + block]
                      for dy in range(0, patch, block) for dx in range(0, patch, block)]
            structured = [b.std() >= min_std for b in blocks]
            if sum(structured) < grid * grid / 2:
                continue
            scores = np.zeros((style.shape[0] - patch + 1, style.shape[1] - patch + 1))
            for y in range(scores.shape[0]):
                for x in range(scores.shape[1]):
                    total = 0.0
                    for (dy, dx), b, keep in zip([(dy, dx) for dy in range(0, patch, block)
                                                  for dx in range(0, patch, block)], blocks, structured):
                        w = style[y + dy:y + dy + block, x + dx:x + dx + block]
                        if keep and w.std() >= min_std:
                            bc, wc = b - b.mean(), w - w.mean()
                            total += (bc * wc).sum() / np.sqrt((bc ** 2).sum() * (wc ** 2).sum())
                    scores[y, x] = total / sum(structured)
            results.append(scores)
    return np.stack(results)

def test_block_ncc_matches_a_brute_force_loop():
    generator = np.random.default_rng(3)
    output = generator.random((14, 17))
    output[:6, :6] = 0.5  # a flat corner: its blocks are left out, and a mostly flat patch is dropped
    style = generator.random((16, 15))
    style[8:, :] = 0.3
    templates = output_templates(torch.from_numpy(output)[None, None].float(), patch=9, grid=3, stride=2,
                                 min_std=0.05)
    ours = match_scores(torch.from_numpy(style)[None, None].float(), templates, min_std=0.05)
    reference = brute_force_scores(output, style, patch=9, grid=3, stride=2, min_std=0.05)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-4)

def test_distinctiveness_formula():
    best = torch.tensor([1.0, 0.9, 0.8, 0.8, 0.5, 0.3])
    runner_up = torch.tensor([0.9, 0.5, 0.8, -0.2, 0.6, 0.0])
    expected = torch.tensor([1.0, 0.8, 0.0, 0.8, 0.0, 0.3])  # (b - r) / (1 - r), r clamped to [0, b]
    assert torch.allclose(distinctiveness(best, runner_up), expected)


def test_the_same_place_at_two_scales_is_not_a_runner_up():
    """One patch finds the same object at scales 1 and 1.12 (same centre as a fraction of the style), and a
    weaker match elsewhere: the runner-up is that other place, not the object at the other scale."""
    at_one = ScaleMatches(1.0, torch.tensor([0.9]), torch.tensor([0.3]), torch.tensor([[40, 40]]), (128, 128), 30)
    at_more = ScaleMatches(1.12, torch.tensor([0.85]), torch.tensor([0.4]), torch.tensor([[47, 47]]), (143, 143), 30)
    elsewhere = ScaleMatches(0.89, torch.tensor([0.5]), torch.tensor([0.2]), torch.tensor([[80, 0]]), (114, 114), 30)
    best, runner_up, which = best_and_runner_up([at_one, at_more, elsewhere])
    assert float(best) == pytest.approx(0.9) and int(which) == 0
    assert float(runner_up) == pytest.approx(0.5)


# ---------------------------------------------------------------------------- copying: the scores

def test_the_style_itself_scores_one(style):
    match = find_copied_object(style, style, style_scales=(1.0,))
    assert match.score == pytest.approx(1.0, abs=1e-3)
    assert match.correlation == pytest.approx(1.0, abs=1e-3)
    assert match.style_scale == 1.0
    assert match.output_box == match.style_box

def test_brushwork_without_objects_scores_below_the_threshold(style, texture):
    """Over every searched scale (the clean pictures of benchmarks/copy_cases.py score 0.37 to 0.52)."""
    assert copied_object_score(texture, style) < COPY_THRESHOLD

def test_a_pasted_face_scores_above_the_threshold_and_is_found(style, texture):
    face = face_crop(style, FACES[VERMEER], long_side=128)
    match = find_copied_object(paste(texture, face, "upper left"), style, style_scales=NEAR_ONE)
    assert match.score > COPY_THRESHOLD
    top, left, height, width = match.output_box
    margin = round(0.04 * 128)
    assert margin <= top and top + height <= margin + face.shape[-2] + 1
    assert margin <= left and left + width <= margin + face.shape[-1] + 1
    # in the style (256 px), the match lies inside the face box
    face_top, face_left, face_height, face_width = (round(f * s) for f, s in
                                                    zip(FACES[VERMEER], (256, 222, 256, 222)))
    style_top, style_left, style_height, style_width = match.style_box
    assert face_top - 2 <= style_top and style_top + style_height <= face_top + face_height + 2
    assert face_left - 2 <= style_left and style_left + style_width <= face_left + face_width + 2

def test_a_face_pasted_between_the_searched_scales_scores_above_the_threshold(style, texture):
    scale = between_scales()
    face = face_crop(style, FACES[VERMEER], long_side=128, scale=scale)
    neighbours = tuple(candidate for candidate in STYLE_SCALES if scale / 1.1 < candidate < scale * 1.1)
    assert len(neighbours) == 2  # the copy is as far from the searched scales as it can be
    match = find_copied_object(paste(texture, face, "lower right"), style, style_scales=neighbours)
    assert match.score > COPY_THRESHOLD
    assert abs(np.log(match.style_scale / scale)) <= np.log(STYLE_SCALES[1] / STYLE_SCALES[0]) / 2 + 1e-9
    assert match.output_box[0] > 128 - 0.04 * 128 - face.shape[-2] - 1  # the lower right copy

def wavy_stripes(height: int, width: int, top: int = 0, left: int = 0) -> torch.Tensor:
    """Grey bands 8 px apart that wave slowly, a window at (top, left) of one endless field: a texture
    with long-range order, like the sky of the Scream."""
    y, x = torch.meshgrid(torch.arange(top, top + height).float(), torch.arange(left, left + width).float(),
                          indexing="ij")
    grey = 0.5 + 0.3 * torch.sin(2 * torch.pi * (y / 8 + 0.15 * torch.sin(2 * torch.pi * x / 64)))
    return grey.expand(1, 3, height, width)


def test_an_ordered_texture_matches_closely_but_is_not_an_object():
    style, output = wavy_stripes(128, 128), wavy_stripes(96, 128, top=13, left=40)
    match = find_copied_object(output, style, style_scales=NEAR_ONE)
    assert match.correlation > 0.95  # a close match in one place ...
    assert match.runner_up > 0.95    # ... and in many others: texture
    assert match.score < COPY_THRESHOLD / 2


def test_flat_pictures_and_regions_do_not_score(style):
    assert copied_object_score(torch.full((1, 3, 96, 128), 0.5), style, style_scales=NEAR_ONE) == 0.0
    # the style's own flat dark background, with a little noise, against the style
    dark = style[..., 10:60, 5:60]
    assert float(dark[0].std(dim=(1, 2)).max()) < 0.02
    assert copied_object_score(noisy(dark, 0.003), style, style_scales=NEAR_ONE) == 0.0

def test_the_heat_map_marks_the_copy_and_has_the_output_size(style, texture):
    face = face_crop(style, FACES[VERMEER], long_side=128)
    output = resize(paste(texture, face, "upper left"), shape=(150, 150))
    match = find_copied_object(output, style, style_scales=NEAR_ONE)
    assert match.heat_map.shape == (150, 150)
    assert float(match.heat_map.max()) == pytest.approx(match.score, abs=1e-6)
    assert float(match.heat_map[-30:, -30:].max()) < COPY_THRESHOLD  # the shuffled corner far from the face

# ---------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("shape", [(3, 64, 80), (1, 3, 80, 64), (1, 3, 40, 200)])
def test_accepts_both_layouts_and_any_aspect_ratio(shape):
    output = torch.rand(shape, generator=torch.Generator().manual_seed(4))
    style = torch.rand((3, 90, 50), generator=torch.Generator().manual_seed(5))
    assert -1.0 <= copied_object_score(output, style, style_scales=(1.0,)) <= 1.0
    assert content_fidelity(output, output) == pytest.approx(1.0)
    assert luminance_ssim(output, output) == pytest.approx(1.0)

@pytest.mark.parametrize("shape", [(64, 64), (2, 3, 64, 64), (1, 4, 64, 64), (1, 1, 64, 64), (1, 3, 4, 64)])
def test_wrong_shapes_are_a_gatys_error(shape):
    bad, good = torch.rand(shape), torch.rand(1, 3, 64, 64)
    with pytest.raises(GatysError, match="output"):
        content_fidelity(bad, good)
    with pytest.raises(GatysError, match="content"):
        content_fidelity(good, bad)
    with pytest.raises(GatysError, match="style"):
        copied_object_score(good, bad)

def test_non_finite_values_are_a_gatys_error():
    bad = torch.rand(1, 3, 32, 32)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(GatysError, match="NaN"):
        copied_object_score(bad, torch.rand(1, 3, 32, 32))

@pytest.mark.parametrize("settings", [{"size": 8}, {"patch_fraction": 0.0}, {"style_scales": ()},
                                      {"style_scales": (1.0, -2.0)}, {"min_std": -1.0}, {"grid": 0}])
def test_bad_settings_are_a_gatys_error(settings):
    with pytest.raises(GatysError):
        copied_object_score(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), **settings)

def test_luminance_is_rec601():
    image = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert torch.allclose(luminance(image), torch.full((1, 1, 2, 2), 0.299))
