"""PatchCore's memory bank and image score (eq. 7) on hand-made features, without the backbone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from diffad.components.backbone import FeatureExtractor
from diffad.components.settings import BackboneSettings
from diffad.core.errors import ConfigError
from diffad.methods.patchcore.model import PatchCore
from diffad.methods.patchcore.settings import PatchCoreSettings


class PixelFeatures(nn.Module):
    """Features = the image itself (one 'stage' with 3 channels at full resolution)."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def model_with_bank(bank: list[list[float]], num_neighbors: int) -> PatchCore:
    model = PatchCore(PixelFeatures(), None, PatchCoreSettings(num_neighbors=num_neighbors))
    model.memory_bank = torch.tensor(bank)
    return model


def test_image_score_is_plain_max_for_one_neighbour():
    model = model_with_bank([[0.0, 0.0], [1.0, 0.0]], num_neighbors=1)
    patches = torch.tensor([[[0.0, 3.0], [1.0, 0.5]]])  # NN distances 3 and 0.5
    score = model.image_scores(patches, torch.tensor([[3.0, 0.5]]), torch.tensor([[0, 1]]))
    assert score.tolist() == [3.0]


def test_image_score_reweighting_matches_equation_7():
    bank = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]]
    model = model_with_bank(bank, num_neighbors=3)
    m_test = np.array([-2.0, 0.0])  # nearest bank feature m* = (0, 0), s* = 2
    patches = torch.tensor([[m_test.tolist(), [1.0, 0.1]]])
    score = model.image_scores(patches, torch.tensor([[2.0, 0.1]]), torch.tensor([[0, 1]]))
    # N_3(m*) = m* itself, (1, 0) at 1 and (0, 2) at 2; (5, 5) is left out
    d = [np.linalg.norm(m_test - np.array(m)) for m in bank[:3]]
    expected = (1 - math.exp(d[0]) / sum(math.exp(v) for v in d)) * 2.0
    assert score.item() == pytest.approx(expected, rel=1e-6)


def test_bank_is_the_configured_fraction_and_seeded():
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    settings = PatchCoreSettings(coreset_ratio=0.25)
    fit = [PatchCore(PixelFeatures(), None, settings).fit(images, seed=s).memory_bank for s in (0, 0, 1)]
    assert fit[0].shape == (math.ceil(0.25 * 3 * 64), 3)
    assert torch.equal(fit[0], fit[1])
    assert not torch.equal(fit[0], fit[2])  # another seed starts the greedy selection elsewhere


def test_full_bank_scores_training_images_zero():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    model = PatchCore(PixelFeatures(), None, PatchCoreSettings(coreset_ratio=1.0, blur_sigma=0.0)).fit(images)
    scores, maps = model.score(torch.cat([images, -images]))
    assert maps.shape == (4, 8, 8)
    assert np.abs(maps[:2]).max() < 1e-6 and scores[:2].max() < 1e-6
    assert scores[2:].min() > 0.1


def test_extractor_must_match_the_config():
    extractor = FeatureExtractor(blocks=(1, 2), input_size=224, backbone=nn.Identity())
    with pytest.raises(ConfigError, match="feature_blocks"):
        PatchCore(extractor, BackboneSettings(feature_blocks=(2, 4)))
    with pytest.raises(ConfigError, match="input_size"):
        PatchCore(extractor, BackboneSettings(input_size=128))
