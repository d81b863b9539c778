"""``fused``: diffusion maps and pretrained-feature maps combined, weights chosen on synthetic defects.

Every part is first put on one scale by its statistics on good images (:class:`Standardizer`,
like the ensemble). The fused map is a convex combination of the standardised maps of
``FUSION_MAP_PARTS``, the fused image score one of the standardised image scores of
``FUSION_IMAGE_PARTS``. The weights are chosen **without test labels**: on synthetic defects
pasted into good training images (a piece of another good image, or a soft colour blotch, under an
irregular mask), the grid point of the simplex (step ``GRID_STEP``) with the highest pixel AUROC
gives the map weights and the one with the highest image AUROC (pasted vs. the same images
unchanged) the image weights. Ties go to the earlier grid point, which spreads weight evenly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from diffad.components.detector import CalibrationSet, CompositeDetector, MethodOutput, Standardizer
from diffad.components.methods import register
from diffad.metrics.roc import auroc

if TYPE_CHECKING:
    import torch

FUSION_MAP_PARTS = ("msma_flow", "msma_features", "ddim", "patchcore", "padim")
FUSION_IMAGE_PARTS = ("msma_gmm", "msma_flow", "msma_features", "ddim", "patchcore", "padim")
GRID_STEP = 0.25


@register
class Fused(CompositeDetector):
    name = "fused"
    parts = tuple(dict.fromkeys(FUSION_IMAGE_PARTS + FUSION_MAP_PARTS))
    order = 50

    @classmethod
    def fit(cls, calibration: CalibrationSet) -> dict[str, dict[str, float]]:
        """Weights from synthetic defects pasted into the calibration images: good images no model
        was fitted on (pasted into training images, the memory-bank baselines win by recall), and
        no test label is used."""
        pasted_images, pasted_masks = paste_defects(calibration.images(), calibration.seed)
        pasted = calibration.score(pasted_images, cls.parts)
        weights = fit_fusion(calibration.outputs, pasted, pasted_masks, calibration.standardizers)
        return weights.to_dict()

    def combine(self, parts: dict[str, MethodOutput]) -> MethodOutput:
        how = self.models.params.fused.image_score
        return fused_output(parts, self.standardizers, FusionWeights(**self.state), how)

    def needed_parts(self) -> tuple[str, ...]:
        """Parts of non-zero weight: a part weighted 0 adds nothing, and scoring it would cost
        predict its whole runtime (the backbone at 256 px, a DDIM reconstruction)."""
        return FusionWeights(**self.state).used_parts(self.models.params.fused.image_score)


@dataclass(frozen=True)
class FusionWeights:
    """Convex weights per part for the map and for the image score."""

    map_weights: dict[str, float]
    image_weights: dict[str, float]

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {"map_weights": dict(self.map_weights), "image_weights": dict(self.image_weights)}

    def used_parts(self, image_score: str) -> tuple[str, ...]:
        """The parts of non-zero weight in the map, and in the image score when it is ``weighted``."""
        weights = [self.map_weights] + ([self.image_weights] if image_score == "weighted" else [])
        return tuple(dict.fromkeys(m for w in weights for m, x in w.items() if x > 0))


def simplex_grid(n: int, step: float = GRID_STEP) -> list[tuple[float, ...]]:
    """All ``n``-vectors of multiples of ``step`` that sum to 1, the even spread first."""
    k = round(1 / step)
    points = [c for c in itertools.product(range(k + 1), repeat=n) if sum(c) == k]
    points.sort(key=lambda c: (max(c) - min(c), c))
    return [tuple(x * step for x in c) for c in points]


def _irregular_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    radius = rng.uniform(0.08, 0.22) * size
    centre = rng.uniform(radius, size - radius, size=2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 10))
    radii = radius * rng.uniform(0.5, 1.0, 10)
    layer = Image.new("L", (size, size), 0)
    points = [
        (centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)
    ]
    ImageDraw.Draw(layer).polygon(points, fill=255)
    return np.asarray(layer) > 127


def paste_defects(images: torch.Tensor, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Synthetic defects on ``images`` (N, 3, S, S) in [-1, 1]: (defective copies, masks (N, S, S)).

    Even rows get a piece of another image of the set (shifted, so the texture breaks), odd rows a
    colour blotch of random sign; at least two images are needed.
    """
    import torch

    n, _, size, _ = images.shape
    if n < 2:
        raise ValueError("paste_defects: at least two images are needed")
    rng = np.random.default_rng(seed)
    out = images.clone()
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        mask = _irregular_mask(size, rng)
        where = torch.from_numpy(mask)
        if i % 2 == 0:
            donor = int((i + 1 + rng.integers(n - 1)) % n)
            shift = tuple(int(s) for s in rng.integers(size // 4, 3 * size // 4, size=2))
            piece = torch.roll(images[donor], shifts=shift, dims=(1, 2))
            out[i][:, where] = piece[:, where]
        else:
            colour = torch.from_numpy(rng.uniform(0.4, 0.9, size=3) * rng.choice([-1, 1], size=3)).float()
            out[i][:, where] = (out[i][:, where] + colour[:, None]).clamp(-1, 1)
        masks[i] = mask
    return out, masks


def _combine(parts: dict[str, np.ndarray], names: tuple[str, ...], weights: tuple[float, ...]) -> np.ndarray:
    return sum(w * parts[m] for m, w in zip(names, weights, strict=True) if w > 0)


def fit_fusion(
    good: dict[str, MethodOutput],
    pasted: dict[str, MethodOutput],
    masks: np.ndarray,
    standardizers: dict[str, Standardizer],
) -> FusionWeights:
    """Weights from the outputs on good images and on their pasted copies (``masks``: the paste)."""
    map_parts = tuple(m for m in FUSION_MAP_PARTS if m in pasted)
    image_parts = tuple(m for m in FUSION_IMAGE_PARTS if m in pasted)
    z_maps = {
        m: np.concatenate([standardizers[m].maps(good[m].maps), standardizers[m].maps(pasted[m].maps)])
        for m in map_parts
    }
    pixel_labels = np.concatenate([np.zeros_like(masks), masks]).ravel()
    best_map = max(
        simplex_grid(len(map_parts)),
        key=lambda w: auroc(pixel_labels, _combine(z_maps, map_parts, w).ravel()),
    )
    z_scores = {
        m: np.concatenate(
            [standardizers[m].scores(good[m].scores), standardizers[m].scores(pasted[m].scores)]
        )
        for m in image_parts
    }
    image_labels = np.concatenate([np.zeros(len(masks)), np.ones(len(masks))])
    best_image = max(
        simplex_grid(len(image_parts)),
        key=lambda w: auroc(image_labels, _combine(z_scores, image_parts, w)),
    )
    return FusionWeights(
        dict(zip(map_parts, best_map, strict=True)), dict(zip(image_parts, best_image, strict=True))
    )


def fused_output(
    parts: dict[str, MethodOutput],
    standardizers: dict[str, Standardizer],
    weights: FusionWeights,
    image_score: str = "weighted",
) -> MethodOutput:
    """The fused image scores and maps of ``parts`` (each standardised on good images).

    ``image_score``: ``weighted`` = the image weights over the parts' image scores; ``map_max`` =
    the maximum of the fused map (as the DDIM, PatchCore and PaDiM detectors score an image).
    """
    maps = np.asarray(
        sum(w * standardizers[m].maps(parts[m].maps) for m, w in weights.map_weights.items() if w > 0)
    )
    if image_score == "map_max":
        scores = maps.reshape(len(maps), -1).max(axis=1)
    else:
        scores = sum(
            w * standardizers[m].scores(parts[m].scores) for m, w in weights.image_weights.items() if w > 0
        )
    return MethodOutput(np.asarray(scores, np.float64), maps.astype(np.float32))
