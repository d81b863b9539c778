"""PatchCore, PaDiM and the feature-space MSMA on the real backbone: a painted defect is found, and
saved models score the same."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffad.components.backbone import FeatureExtractor, load_backbone
from diffad.components.settings import BackboneSettings
from diffad.core.errors import ArtifactError
from diffad.methods.msma_features.model import FeatureMsma
from diffad.methods.msma_features.settings import MsmaFeaturesSettings
from diffad.methods.padim.model import PaDiM
from diffad.methods.padim.settings import PadimSettings
from diffad.methods.patchcore.model import PatchCore
from diffad.methods.patchcore.settings import PatchCoreSettings

torch.set_num_threads(1)
DEFECT = (slice(20, 32), slice(36, 48))  # rows, columns of the painted square in 64 px images


def stripes(n: int, seed: int, size: int = 64) -> torch.Tensor:
    """Vertical stripes (period 8 px), random phase, a little noise: (n, 3, size, size) in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    columns = torch.arange(size, dtype=torch.float32)
    phase = torch.rand(n, 1, 1, 1, generator=generator) * 2 * math.pi
    grey = 0.5 * torch.sin(2 * math.pi * columns / 8 + phase) + 0.05 * torch.randn(
        n, 1, size, size, generator=generator
    )
    return (grey * torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)).expand(n, 3, size, size).clone()


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    defective = stripes(2, seed=2)
    defective[:, :, DEFECT[0], DEFECT[1]] = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1)  # a red square
    return {"train": stripes(6, seed=0), "good": stripes(2, seed=1), "defective": defective}


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(blocks=(1, 2), input_size=224, backbone=load_backbone(), border_pad=32)


@pytest.fixture(
    scope="module", params=[PatchCore, PaDiM, FeatureMsma], ids=["patchcore", "padim", "msma_features"]
)
def fitted(request, data, extractor):
    # full bank: a training patch is in it; a small, short feature denoiser
    settings = {
        PatchCore: PatchCoreSettings(coreset_ratio=1.0),
        PaDiM: PadimSettings(),
        FeatureMsma: MsmaFeaturesSettings(hidden=64, steps=300),
    }[request.param]
    backbone = BackboneSettings(batch_size=4, input_size=224)
    return request.param(extractor, backbone, settings, "cpu").fit(data["train"], seed=0)


def test_painted_defect_is_found(fitted, data):
    images = torch.cat([data["train"][:2], data["good"], data["defective"]])
    scores, maps = fitted.score(images)
    assert scores.shape == (6,) and maps.shape == (6, 64, 64) and maps.dtype == np.float32
    train, good, defective = scores[:2], scores[2:4], scores[4:]
    if isinstance(fitted, FeatureMsma):  # standardised norms: 0 is a typical good cell
        assert defective.min() > good.max() + 3
    else:
        assert defective.min() > 2 * good.max()
    if isinstance(fitted, PatchCore):
        assert train.max() < 1e-3 * defective.min()  # every training patch is in the bank
    for heat in maps[4:]:
        row, col = np.unravel_index(heat.argmax(), heat.shape)
        assert DEFECT[0].start <= row < DEFECT[0].stop and DEFECT[1].start <= col < DEFECT[1].stop


def test_save_load_round_trip_scores_identically(fitted, data, extractor, tmp_path):
    path = tmp_path / "model.safetensors"
    fitted.save(path)
    loaded = type(fitted).load(path, extractor, "cpu")
    assert (loaded.backbone, loaded.settings) == (fitted.backbone, fitted.settings)
    images = torch.cat([data["good"][:1], data["defective"][:1]])
    (s1, m1), (s2, m2) = fitted.score(images), loaded.score(images)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(m1, m2)
    other = PaDiM if isinstance(fitted, PatchCore) else PatchCore  # a file of another method
    with pytest.raises(ArtifactError, match=fitted.method):
        other.load(path, extractor)
    with pytest.raises(ArtifactError, match="another backbone"):
        type(fitted).load(path, FeatureExtractor((2, 4), 224, backbone=extractor.backbone))
    with pytest.raises(ArtifactError, match="not found"):
        type(fitted).load(tmp_path / "missing.safetensors", extractor)
