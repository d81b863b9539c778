"""MSMA in the backbone's feature space: score norms of a feature denoiser, one per grid cell.

Notation (paper -> code; MSMA: Mahmood et al. 2020, EDM: Karras et al. 2022):
    phi(x)         embed       PatchCore's patch embedding (BackboneModel.local_embedding, 3 x 3 pooled)
    z              cells       phi(x) standardised per channel with the training mean and std
    D(z; sigma)    denoiser    EDM feature denoiser (diffusion/feature_denoiser.py)
    e_i(z)         norms       ||D(z; sigma_i) - z|| / sigma_i = sigma_i ||grad log p_sigma_i(z)||
                               (Tweedie), for L geometric levels sigma_min..sigma_max
    A(z)           cell map    mean over i of (e_i - mu_i) / s_i, mu_i, s_i over the training cells

The score is taken at the clean cell, as MSMA does. A cell far from every good feature is pulled a
long way by the denoiser at every level, so its e_i are large; a good cell sits where the
learned density is high. The map is A upsampled to the image and blurred like the baselines' maps;
the image score is its maximum, as for PaDiM and the DDIM detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffad.components.backbone_model import BackboneModel, batches, finish_maps
from diffad.components.settings import BackboneSettings
from diffad.core.errors import ArtifactError, DataError
from diffad.methods.msma_features.feature_denoiser import build_feature_denoiser, train_feature_denoiser
from diffad.methods.msma_features.settings import MsmaFeaturesSettings

NET_PREFIX = "net."


def noise_levels(cfg) -> torch.Tensor:
    """The L score-norm levels, geometric from ``sigma_min`` to ``sigma_max`` (float32)."""
    return torch.tensor(np.geomspace(cfg.sigma_min, cfg.sigma_max, cfg.num_sigmas), dtype=torch.float32)


class FeatureMsma(BackboneModel):
    """Feature denoiser + per-level statistics of its score norms on the good training cells."""

    method = "msma_features"
    settings_type = MsmaFeaturesSettings

    def __init__(
        self,
        extractor: nn.Module | None = None,
        backbone: BackboneSettings | None = None,
        settings: MsmaFeaturesSettings | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(extractor, backbone, settings, device)
        self.levels = noise_levels(self.settings).to(self.device)
        self.denoiser = None
        self.state: dict[str, torch.Tensor] = {}  # channel_mean, channel_std (C,), norm_mean, norm_std (L,)
        self.losses: list[float] = []

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """The locally aggregated patch features PatchCore's memory bank holds (B, D, h, w)."""
        return self.local_embedding(batch)

    def standardise(self, embedding: torch.Tensor) -> torch.Tensor:
        mean, std = self.state["channel_mean"], self.state["channel_std"]
        return (embedding - mean[None, :, None, None]) / std[None, :, None, None]

    @torch.inference_mode()
    def norms(self, cells: torch.Tensor) -> torch.Tensor:
        """e_i of standardised cells (B, C, h, w) -> (B, L, h, w)."""
        out = []
        for sigma in self.levels:
            denoised = self.denoiser(cells, sigma.expand(cells.shape[0]))
            out.append((denoised - cells).norm(dim=1) / sigma)
        return torch.stack(out, dim=1)

    def fit(self, images: torch.Tensor, seed: int = 0) -> FeatureMsma:
        """Train the feature denoiser on good ``images`` (N, 3, H, W) in [-1, 1]."""
        if images.shape[0] == 0:
            raise DataError("msma_features needs at least 1 good training image, got 0")
        with torch.inference_mode():
            embedding = torch.cat(
                [self.embed(b) for b in batches(images, self.backbone.batch_size, self.device)]
            )
        raw = embedding.permute(0, 2, 3, 1).reshape(-1, embedding.shape[1])  # (N h w, C)
        self.state = {"channel_mean": raw.mean(0), "channel_std": raw.std(0) + 1e-6}
        z = self.standardise(embedding)  # once: the training cells and their norms below
        cells = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        with torch.enable_grad():
            self.denoiser, self.losses = train_feature_denoiser(
                cells.clone(), self.settings, seed, self.device
            )
        norms = torch.cat([self.norms(batch) for batch in z.split(self.backbone.batch_size)])
        self.state["norm_mean"] = norms.mean(dim=(0, 2, 3))
        self.state["norm_std"] = norms.std(dim=(0, 2, 3)) + 1e-6
        return self

    @torch.inference_mode()
    def score(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Image scores (N,) and anomaly maps (N, H, W) at the resolution of ``images``."""
        self._fitted()
        maps = []
        for batch in batches(images, self.backbone.batch_size, self.device):
            norms = self.norms(self.standardise(self.embed(batch)))
            mean, std = self.state["norm_mean"], self.state["norm_std"]
            cell_map = ((norms - mean[None, :, None, None]) / std[None, :, None, None]).mean(dim=1)
            maps.append(finish_maps(cell_map, tuple(batch.shape[-2:]), self.settings.blur_sigma).cpu())
        maps = torch.cat(maps)
        return maps.flatten(1).max(dim=1).values.numpy().astype(np.float64), maps.numpy()

    def save(self, path: str | Path) -> None:
        """Network weights, standardisation and config in one safetensors file."""
        net = {NET_PREFIX + k: v for k, v in self._fitted().net.state_dict().items()}
        extra = {
            "channels": self.denoiser.net.channels,
            "final_loss": self.losses[-1] if self.losses else None,
        }
        self.save_model(path, {**self.state, **net}, extra)

    @classmethod
    def load(
        cls, path: str | Path, extractor: nn.Module | None = None, device: str | torch.device = "cpu"
    ) -> FeatureMsma:
        keys = ("channel_mean", "channel_std", "norm_mean", "norm_std")
        model, tensors, extra = cls.from_file(path, keys, extractor, device)
        channels = sum(getattr(model.extractor, "channels", (extra.get("channels"),)))
        if extra.get("channels") != channels or tensors["channel_mean"].shape != (channels,):
            raise ArtifactError(f"{path}: features of {extra.get('channels')} channels, expected {channels}")
        if tensors["norm_mean"].shape != model.levels.shape:
            raise ArtifactError(
                f"{path}: {tensors['norm_mean'].numel()} noise levels, the config has {len(model.levels)}"
            )
        fcfg = model.settings
        denoiser = build_feature_denoiser(channels, fcfg.hidden, fcfg.blocks)
        net = {k[len(NET_PREFIX) :]: v for k, v in tensors.items() if k.startswith(NET_PREFIX)}
        try:
            denoiser.net.load_state_dict(net, strict=True)
        except RuntimeError as exc:
            raise ArtifactError(f"{path}: network weights do not fit the stored config ({exc})") from None
        model.denoiser = denoiser.to(model.device).eval()
        model.state = {k: tensors[k].to(model.device, torch.float32) for k in keys}
        return model

    def _fitted(self):
        if self.denoiser is None:
            raise RuntimeError("msma_features: call fit() or load() before scoring or saving")
        return self.denoiser
