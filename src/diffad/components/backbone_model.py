"""What the backbone-feature models share (PatchCore, PaDiM, the feature MSMA): the patch
embedding, map post-processing and safetensors I/O.

Both methods describe every position of a feature grid by the concatenated features of several
backbone stages, upsampled to the grid of the first (shallowest) requested stage: at 224 px input and
blocks (1, 2) that is a 56 x 56 grid of 24 + 40 = 64-d vectors. Their maps are returned at the
original image resolution, smoothed by a Gaussian of ``blur_sigma`` pixels at 256 px (scaled).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn

from diffad.components.backbone import FeatureExtractor
from diffad.components.settings import BackboneSettings
from diffad.core.errors import ArtifactError, ConfigError
from diffad.core.files import save_safetensors
from diffad.core.maps import gaussian_blur, resize_maps
from diffad.core.typed_yaml import build, to_plain

FORMAT_VERSION = "1"
BLUR_REFERENCE_SIZE = 256  # blur_sigma is given in pixels of a 256 px image
LOCAL_POOL = 3  # PatchCore's local aggregation: each feature cell averaged over its 3 x 3 neighbours


def make_extractor(extractor: nn.Module | None, cfg: BackboneSettings, device: torch.device) -> nn.Module:
    """``extractor`` (or a new :class:`FeatureExtractor` from ``cfg``) on ``device``, checked against ``cfg``.

    Any module mapping (N, 3, H, W) in [-1, 1] to a list of (N, C, h, w) maps works; a
    ``FeatureExtractor`` must have the configured blocks and input size.
    """
    if extractor is None:
        extractor = FeatureExtractor(cfg.feature_blocks, cfg.input_size, border_pad=cfg.border_pad)
    wanted_by_name = {
        "feature_blocks": ("blocks", cfg.feature_blocks),
        "input_size": ("input_size", cfg.input_size),
    }
    wanted_by_name["border_pad"] = ("border_pad", cfg.border_pad)
    for name, (key, wanted) in wanted_by_name.items():
        actual = getattr(extractor, key, wanted)
        if actual != wanted:
            raise ConfigError(f"backbone.{name}: {wanted!r}, but the feature extractor uses {actual!r}")
    return extractor.to(device)


class BackboneModel:
    """What every model fitted on the backbone's features shares (PatchCore, PaDiM, the feature
    MSMA): its backbone set-up and settings, device and checked extractor, and being rebuilt from
    a :func:`save_state` file."""

    method: ClassVar[str]  # the name stored in and checked against the file
    settings_type: ClassVar[type]  # the method's settings section (methods/<name>/settings.py)

    def __init__(
        self,
        extractor: nn.Module | None = None,
        backbone: BackboneSettings | None = None,
        settings: Any = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.backbone = backbone or BackboneSettings()
        self.settings = settings if settings is not None else self.settings_type()
        self.device = torch.device(device)
        self.extractor = make_extractor(extractor, self.backbone, self.device)

    @classmethod
    def from_file(
        cls, path: str | Path, keys: tuple[str, ...], extractor: nn.Module | None, device: str | torch.device
    ) -> tuple[Any, dict[str, torch.Tensor], dict]:
        """An empty model with the settings stored in ``path``, the file's tensors and its ``extra``;
        :class:`ArtifactError` when ``extractor`` is not the backbone set-up it was fitted with."""
        tensors, backbone, settings, extra = load_state(path, cls.method, keys, cls.settings_type)
        try:
            model = cls(extractor, backbone, settings, device)
        except ConfigError as exc:
            raise ArtifactError(f"{path}: fitted with another backbone set-up: {exc}") from None
        return model, tensors, extra

    def local_embedding(self, batch: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> locally aggregated patch features (B, D, h, w): each
        stage averaged over :data:`LOCAL_POOL` cells, then on the first stage's grid (PatchCore's
        memory bank holds these; the feature MSMA models their density)."""
        return patch_embedding(self.extractor(batch), pool=LOCAL_POOL, mode="bilinear")

    def save_model(self, path: str | Path, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        """Write ``tensors`` with this model's backbone set-up and settings (:func:`save_state`)."""
        save_state(path, self.method, tensors, {"backbone": self.backbone, "settings": self.settings}, extra)


def batches(images: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    """Consecutive float32 batches of ``images`` (N, 3, H, W) moved to ``device``."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected (N, 3, H, W), got {tuple(images.shape)}")
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size].to(device=device, dtype=torch.float32)


def patch_embedding(features: list[torch.Tensor], pool: int = 0, mode: str = "bilinear") -> torch.Tensor:
    """Concatenate stage features on the first stage's grid: [(N, C_b, h_b, w_b)] -> (N, sum C_b, h_0, w_0).

    ``pool`` > 1: each stage is first averaged over a ``pool`` x ``pool`` neighbourhood (stride 1,
    PatchCore's local aggregation). ``mode``: interpolation of the deeper stages.
    """
    size = features[0].shape[-2:]
    parts = []
    for feature in features:
        if pool > 1:
            feature = F.avg_pool2d(feature, pool, stride=1, padding=pool // 2)
        if feature.shape[-2:] != size:
            align = {} if mode == "nearest" else {"align_corners": False}
            feature = F.interpolate(feature, size=size, mode=mode, **align)
        parts.append(feature)
    return torch.cat(parts, dim=1)


def finish_maps(patch_maps: torch.Tensor, size: tuple[int, int], blur_sigma: float) -> torch.Tensor:
    """Grid maps (N, h, w) -> (N, H, W): bilinear upsampling, then a Gaussian blur scaled to ``size``."""
    maps = resize_maps(patch_maps.float(), size)
    return gaussian_blur(maps, blur_sigma * size[0] / BLUR_REFERENCE_SIZE)


def save_state(
    path: str | Path, method: str, tensors: dict[str, torch.Tensor], config: dict[str, Any], extra: dict
) -> None:
    """Write ``tensors`` to ``path`` (safetensors, atomically) with method, ``config`` (the backbone
    set-up and the method's settings) and ``extra`` as JSON."""
    path = Path(path)
    metadata = {
        "method": method,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(to_plain(config)),
        "extra": json.dumps(extra),
    }
    plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_safetensors(path, plain, metadata)


def load_state(
    path: str | Path, method: str, keys: tuple[str, ...], settings_type: type
) -> tuple[dict[str, torch.Tensor], BackboneSettings, Any, dict]:
    """Read what :func:`save_state` wrote; :class:`ArtifactError` names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: {method} model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({exc})") from None
    if metadata.get("method") != method:
        raise ArtifactError(f"{path}: holds {metadata.get('method')!r}, expected a {method} model")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format version {metadata.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise ArtifactError(f"{path}: tensor {missing[0]!r} missing")
    try:
        config = json.loads(metadata["config"])
        backbone = build(BackboneSettings, config["backbone"], "backbone")
        settings = build(settings_type, config["settings"], method)
        extra = json.loads(metadata.get("extra", "{}"))
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise ArtifactError(f"{path}: stored config is invalid ({exc})") from None
    return tensors, backbone, settings, extra
