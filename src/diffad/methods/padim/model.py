"""PaDiM (Defard et al., "PaDiM: a Patch Distribution Modeling Framework", ICPR 2021).

Notation (paper -> code):
    x_ij        embedding        concatenated stage features at grid position (i, j), nearest-upsampled
    d           channel_index    random subset of ``padim.dims`` embedding channels (seeded, stored)
    mu_ij       mean             (P, d) per-position mean over the good images, P = h * w
    Sigma_ij    covariance       (P, d, d) sample covariance + 0.01 I (eq. 1)
    M(x_ij)     distance         sqrt((x_ij - mu_ij)^T Sigma_ij^-1 (x_ij - mu_ij))  (eq. 2)

The sums for the covariance are accumulated batch by batch around a shift (the first batch's mean)
in float32, so memory stays at one (P, d, d) array whatever the number of images, without the
cancellation of the raw E[x x^T] - mu mu^T. The anomaly map is M upsampled to the image and blurred;
the image score is its maximum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffad.components.backbone_model import (
    BackboneModel,
    batches,
    finish_maps,
    patch_embedding,
)
from diffad.components.settings import BackboneSettings
from diffad.core.errors import ArtifactError, DataError
from diffad.methods.padim.settings import PadimSettings

EPSILON = 0.01  # covariance regularisation (paper)
POSITIONS_PER_CHUNK = 512  # positions per inversion / distance chunk (bounds the temporaries)


def mahalanobis(delta: torch.Tensor, inv_cov: torch.Tensor) -> torch.Tensor:
    """sqrt(delta^T Sigma^-1 delta) for ``delta`` (P, B, d) and ``inv_cov`` (P, d, d) -> (P, B)."""
    out = torch.empty(delta.shape[:2], device=delta.device)
    for start in range(0, delta.shape[0], POSITIONS_PER_CHUNK):
        part = delta[start : start + POSITIONS_PER_CHUNK]
        quad = (torch.bmm(part, inv_cov[start : start + POSITIONS_PER_CHUNK]) * part).sum(dim=-1)
        out[start : start + POSITIONS_PER_CHUNK] = quad.clamp_min(0).sqrt()
    return out


def invert_covariances(cov: torch.Tensor) -> torch.Tensor:
    """(P, d, d) symmetric positive definite -> inverses, in float64 per chunk, returned as float32."""
    out = torch.empty_like(cov)
    for start in range(0, cov.shape[0], POSITIONS_PER_CHUNK):
        part = cov[start : start + POSITIONS_PER_CHUNK].double()
        out[start : start + POSITIONS_PER_CHUNK] = torch.cholesky_inverse(torch.linalg.cholesky(part)).float()
    return out


class PaDiM(BackboneModel):
    """A multivariate Gaussian per feature-grid position; anomaly = Mahalanobis distance."""

    method = "padim"
    settings_type = PadimSettings

    def __init__(
        self,
        extractor: nn.Module | None = None,
        backbone: BackboneSettings | None = None,
        settings: PadimSettings | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(extractor, backbone, settings, device)
        self.channel_index: torch.Tensor | None = None  # (d,) int64, sorted
        self.mean: torch.Tensor | None = None  # (P, d)
        self.inv_cov: torch.Tensor | None = None  # (P, d, d)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> all embedding channels (B, D, h, w)."""
        return patch_embedding(self.extractor(batch), pool=0, mode="nearest")

    def _positions(self, embedding: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Embedding (B, D, h, w) -> selected channels per position (P, B, d), and the grid (h, w)."""
        embedding = embedding[:, self.channel_index]
        b, d, h, w = embedding.shape
        return embedding.permute(2, 3, 0, 1).reshape(h * w, b, d), (h, w)

    @torch.inference_mode()
    def fit(self, images: torch.Tensor, seed: int = 0) -> PaDiM:
        """Fit the per-position Gaussians on good ``images`` (N, 3, H, W) in [-1, 1]."""
        if images.shape[0] < 2:
            raise DataError(f"PaDiM needs at least 2 good training images, got {images.shape[0]}")
        shift = sum1 = sum2 = None
        count = 0
        self.channel_index = None
        for batch in batches(images, self.backbone.batch_size, self.device):
            embedding = self.embed(batch)
            if self.channel_index is None:  # the embedding width is known with the first batch
                self.channel_index = self._choose_channels(embedding.shape[1], seed).to(self.device)
            x, _ = self._positions(embedding)  # (P, B, d)
            if shift is None:
                shift = x.mean(dim=1)
                sum1 = torch.zeros_like(shift)
                sum2 = torch.zeros(*shift.shape, shift.shape[1], device=self.device)
            centered = x - shift[:, None, :]
            sum1 += centered.sum(dim=1)
            sum2 += torch.bmm(centered.transpose(1, 2), centered)
            count += x.shape[1]
        mean_shifted = sum1 / count
        cov = (sum2 - count * mean_shifted[:, :, None] * mean_shifted[:, None, :]) / (count - 1)
        cov += EPSILON * torch.eye(cov.shape[-1], device=self.device)  # eq. 1
        self.mean = shift + mean_shifted
        self.inv_cov = invert_covariances(cov)
        return self

    def _choose_channels(self, width: int, seed: int) -> torch.Tensor:
        """Seeded random subset of ``padim.dims`` of ``width`` channels (all when fewer), sorted."""
        if self.settings.dims >= width:
            return torch.arange(width)
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(width, generator=generator)[: self.settings.dims].sort().values

    @torch.inference_mode()
    def score(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Image scores (N,) and anomaly maps (N, H, W) at the resolution of ``images`` (N, 3, H, W)."""
        mean, inv_cov = self._fitted()
        scores, maps = [], []
        for batch in batches(images, self.backbone.batch_size, self.device):
            x, (h, w) = self._positions(self.embed(batch))
            if x.shape[0] != mean.shape[0]:
                raise ValueError(
                    f"PaDiM: feature grid {h}x{w} does not match the fitted {mean.shape[0]} positions"
                )
            distance = mahalanobis(x - mean[:, None, :], inv_cov)  # (P, B), eq. 2
            patch_maps = distance.T.reshape(-1, h, w)
            full = finish_maps(patch_maps, tuple(batch.shape[-2:]), self.settings.blur_sigma)
            maps.append(full.cpu())
            scores.append(full.flatten(1).amax(dim=1).cpu())
        return torch.cat(scores).numpy(), torch.cat(maps).numpy()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``channel_index`` (d,), ``mean`` (P, d), ``inv_cov`` (P, d, d)."""
        mean, inv_cov = self._fitted()
        return {"channel_index": self.channel_index, "mean": mean, "inv_cov": inv_cov}

    def save(self, path: str | Path) -> None:
        """Write the Gaussians and the settings (JSON in the metadata) to ``path`` (safetensors)."""
        mean, _ = self._fitted()
        self.save_model(path, self.state_dict(), {"positions": int(mean.shape[0])})

    @classmethod
    def load(
        cls, path: str | Path, extractor: nn.Module | None = None, device: str | torch.device = "cpu"
    ) -> PaDiM:
        """Rebuild a fitted model from :meth:`save` output; the settings come from the file."""
        model, tensors, _ = cls.from_file(path, ("channel_index", "mean", "inv_cov"), extractor, device)
        index, mean, inv_cov = tensors["channel_index"], tensors["mean"], tensors["inv_cov"]
        d = index.shape[0]
        if mean.ndim != 2 or mean.shape[1] != d or inv_cov.shape != (mean.shape[0], d, d):
            raise ArtifactError(
                f"{path}: inconsistent shapes channel_index {tuple(index.shape)}, mean {tuple(mean.shape)}, "
                f"inv_cov {tuple(inv_cov.shape)}"
            )
        model.channel_index = index.to(model.device, torch.long)
        model.mean = mean.to(model.device, torch.float32)
        model.inv_cov = inv_cov.to(model.device, torch.float32)
        return model

    def _fitted(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None or self.inv_cov is None:
            raise RuntimeError("PaDiM: call fit() or load() before scoring or saving")
        return self.mean, self.inv_cov
