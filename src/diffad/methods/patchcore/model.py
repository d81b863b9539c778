"""PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022).

Notation (paper -> code):
    phi_j(x)   features         backbone stage outputs (FeatureExtractor, blocks from the config)
    P_s,p      local_embedding  locally aware patch features: 3 x 3 average over the neighbourhood
    M          memory_bank      greedy k-center coreset of all good patch features, (K, D)
    m_test     patches          patch features of a test image, (P, D)
    s*         s_star           max over patches of the nearest-neighbour distance (eq. 6)
    N_b(m*)    support          the b = num_neighbors bank features nearest to m*, m* included
    s          image score      (1 - exp||m_test* - m*|| / sum_{m in N_b(m*)} exp||m_test* - m||) s* (eq. 7)

Fit: embed every good image (deeper stages upsampled bilinearly to the first stage's grid and
concatenated), optionally project the features to ``projection_dim`` for the coreset selection only,
and keep ``coreset_ratio`` of all patches as the memory bank. Score: the distance of each patch to its
nearest bank feature is the patch map; the image score follows eq. 7, or is plain s* when
``num_neighbors`` <= 1 (eq. 7 with b = 1 would always be 0; anomalib does the same).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffad.components.backbone_model import (
    BackboneModel,
    batches,
    finish_maps,
)
from diffad.components.coreset import greedy_coreset, nearest_neighbors, random_projection
from diffad.components.settings import BackboneSettings
from diffad.core.errors import ArtifactError, DataError
from diffad.methods.patchcore.settings import PatchCoreSettings


class PatchCore(BackboneModel):
    """Memory bank of good patch features; anomaly = distance to the nearest one."""

    method = "patchcore"
    settings_type = PatchCoreSettings

    def __init__(
        self,
        extractor: nn.Module | None = None,
        backbone: BackboneSettings | None = None,
        settings: PatchCoreSettings | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(extractor, backbone, settings, device)
        self.memory_bank: torch.Tensor | None = None  # (K, D) float32

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> locally aggregated patch features (B, D, h, w)."""
        return self.local_embedding(batch)

    @torch.inference_mode()
    def fit(self, images: torch.Tensor, seed: int = 0) -> PatchCore:
        """Build the memory bank from good ``images`` (N, 3, H, W) in [-1, 1]."""
        if images.shape[0] == 0:
            raise DataError("PatchCore needs at least 1 good training image, got 0")
        features = None  # (N * h * w, D), filled in place: no second copy from a concatenation
        filled = 0
        for batch in batches(images, self.backbone.batch_size, self.device):
            embedding = self.embed(batch)
            rows = embedding.permute(0, 2, 3, 1).reshape(-1, embedding.shape[1])
            if features is None:
                per_image = rows.shape[0] // batch.shape[0]
                features = torch.empty(images.shape[0] * per_image, rows.shape[1], device=self.device)
            features[filled : filled + rows.shape[0]] = rows
            filled += rows.shape[0]
        generator = torch.Generator().manual_seed(seed)
        dim = self.settings.projection_dim
        selection_space = features
        if 0 < dim < features.shape[1]:
            selection_space = random_projection(features, dim, generator)
        k = max(1, math.ceil(self.settings.coreset_ratio * features.shape[0]))
        start = int(torch.randint(features.shape[0], (1,), generator=generator))
        self.memory_bank = features[greedy_coreset(selection_space, k, start)].clone()
        return self

    @torch.inference_mode()
    def score(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Image scores (N,) and anomaly maps (N, H, W) at the resolution of ``images`` (N, 3, H, W)."""
        bank = self._bank()
        scores, maps = [], []
        for batch in batches(images, self.backbone.batch_size, self.device):
            embedding = self.embed(batch)
            n, dim, h, w = embedding.shape
            patches = embedding.permute(0, 2, 3, 1).reshape(n, h * w, dim)
            distance, index = nearest_neighbors(patches.reshape(-1, dim), bank)
            distance, index = distance.view(n, h * w), index.view(n, h * w)
            scores.append(self.image_scores(patches, distance, index).cpu())
            maps.append(
                finish_maps(distance.view(n, h, w), tuple(batch.shape[-2:]), self.settings.blur_sigma).cpu()
            )
        return torch.cat(scores).numpy(), torch.cat(maps).numpy()

    def image_scores(
        self, patches: torch.Tensor, distance: torch.Tensor, index: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 7 from test patches (N, P, D), their NN distances (N, P) and NN bank indices (N, P) -> (N,)."""
        bank = self._bank()
        s_star, worst = distance.max(dim=1)
        b = min(self.settings.num_neighbors, bank.shape[0])
        if b <= 1:
            return s_star
        rows = torch.arange(patches.shape[0], device=patches.device)
        m_test = patches[rows, worst]  # (N, D): the most anomalous test patch
        m_star_index = index[rows, worst]  # its nearest bank feature m*
        to_m_star = torch.cdist(bank[m_star_index], bank)  # (N, K)
        to_m_star[rows, m_star_index] = -1.0  # m* itself first, whatever the rounding
        support = to_m_star.topk(b, dim=1, largest=False).indices  # N_b(m*), (N, b), m* first
        d = (m_test[:, None, :] - bank[support]).norm(dim=-1)  # ||m_test* - m||, (N, b)
        weight = 1 - torch.softmax(d, dim=1)[:, 0]  # softmax: exp ratio without overflow
        return weight * s_star

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that define the fitted model: ``memory_bank`` (K, D)."""
        return {"memory_bank": self._bank()}

    def save(self, path: str | Path) -> None:
        """Write the memory bank and the settings (JSON in the metadata) to ``path`` (safetensors)."""
        self.save_model(path, self.state_dict(), {"bank_size": int(self._bank().shape[0])})

    @classmethod
    def load(
        cls, path: str | Path, extractor: nn.Module | None = None, device: str | torch.device = "cpu"
    ) -> PatchCore:
        """Rebuild a fitted model from :meth:`save` output; the settings come from the file."""
        model, tensors, _ = cls.from_file(path, ("memory_bank",), extractor, device)
        bank = tensors["memory_bank"]
        channels = sum(getattr(model.extractor, "channels", (bank.shape[1],)))
        if bank.ndim != 2 or bank.shape[1] != channels:
            raise ArtifactError(f"{path}: memory bank of shape {tuple(bank.shape)}, expected (K, {channels})")
        model.memory_bank = bank.to(model.device, torch.float32)
        return model

    def _bank(self) -> torch.Tensor:
        if self.memory_bank is None:
            raise RuntimeError("PatchCore: call fit() or load() before scoring or saving")
        return self.memory_bank
