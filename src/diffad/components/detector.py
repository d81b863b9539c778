"""The detector interface: images -> image scores (N,) and anomaly maps (N, H, W) (the registry: methods.py).

The same detectors serve `evaluate`, `diffad predict` and the dashboard, so a bundle scores an
image exactly as the evaluation did (pre- and post-processing live in the detector, not in the
callers). What a detector is fitted on (``fits_on``):

    images       good training images (:class:`ImageDetector`; fitted by `fit@<name>`)
    score_norms  the cached MSMA score norms (:class:`NormsDetector`; fitted by `fit@<name>`)
    denoiser     nothing of its own: built from the trained denoiser (DDIM reconstruction)
    parts        a composite: combines the outputs of other methods, each standardised by its
                 statistics on the calibration images; fitted by `evaluate` (:class:`Calibration`)

``model_files`` names the files a detector loads, by their name inside a model bundle; the
bundle holds exactly the files of its methods. Heavy imports (torch, the models) happen inside
the methods, so listing the detectors and their metadata stays cheap (the dashboard does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from diffad.core.errors import ArtifactError

if TYPE_CHECKING:
    import torch

    from diffad.components.model_context import ModelContext as Models

FitsOn = Literal["images", "score_norms", "denoiser", "parts"]


@dataclass
class MethodOutput:
    """Scores of one method on a set of images, in input order."""

    scores: np.ndarray  # (N,) float, larger = more anomalous
    maps: np.ndarray | None  # (N, H, W) float32 at the image resolution, or None (msma_gmm)

    def subset(self, index: np.ndarray) -> MethodOutput:
        return MethodOutput(self.scores[index], None if self.maps is None else self.maps[index])


@dataclass(frozen=True)
class Standardizer:
    """(x - mean) / std with the statistics of good images: puts methods on one scale."""

    image_mean: float
    image_std: float
    map_mean: float
    map_std: float

    @classmethod
    def fit(cls, good: MethodOutput) -> Standardizer:
        maps = good.maps if good.maps is not None else np.zeros(1, np.float32)
        return cls(
            float(good.scores.mean()),
            float(good.scores.std() + 1e-8),
            float(maps.mean()),
            float(maps.std() + 1e-8),
        )

    def scores(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.image_mean) / self.image_std

    def maps(self, maps: np.ndarray) -> np.ndarray:
        return (maps - self.map_mean) / self.map_std

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class Batch:
    """One scoring call's images and what several detectors share about them, computed once.

    ``score_norms``: the MSMA score norms (N, L), (N, L, h, w) of these images when already known
    (the `score_norms` output); otherwise ``compute_norms(images)`` runs on first use.
    """

    def __init__(
        self,
        images: torch.Tensor,
        score_norms: tuple[np.ndarray, np.ndarray] | None = None,
        compute_norms: Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.images = images
        self._norms = score_norms
        self._compute_norms = compute_norms

    def score_norms(self) -> tuple[np.ndarray, np.ndarray]:
        if self._norms is None:
            if self._compute_norms is None:
                raise ValueError("score norms are neither given nor computable for this batch")
            self._norms = self._compute_norms(self.images)
        return self._norms


class Detector(ABC):
    """One anomaly-detection method. Subclasses set the class attributes and register themselves."""

    name: ClassVar[str]  # the method's name: its module's name, a key of metrics.json
    fits_on: ClassVar[FitsOn]
    model_files: ClassVar[tuple[str, ...]] = ()  # files it loads, by their bundle name
    has_map: ClassVar[bool] = True  # False: image scores only (no pixel metrics, no PRO curve)
    order: ClassVar[int] = 100  # place in tables: diffusion methods, composites, then baselines

    @classmethod
    @abstractmethod
    def load(cls, models: Models) -> Detector:
        """The fitted detector, from ``models``' files and shared parts (denoiser, backbone)."""

    @abstractmethod
    def score(self, batch: Batch) -> MethodOutput:
        """Image scores (N,) and maps (N, H, W) (or None) of ``batch.images`` (N, 3, H, W) in [-1, 1]."""

    def training_history(self) -> list[dict[str, float]]:
        """Rows of the fit's learning curve (one per epoch or step; `fit@<name>` writes them for
        `dvc plots`); empty for a method fitted in closed form."""
        return []


class ImageDetector(Detector):
    """A detector fitted on good training images (`fit@<name>` fits and saves it)."""

    fits_on: ClassVar[FitsOn] = "images"

    @classmethod
    @abstractmethod
    def fit(cls, images: torch.Tensor, models: Models, seed: int) -> ImageDetector:
        """Fit on good ``images`` (N, 3, H, W) in [-1, 1]; ``models`` gives params, device, backbone."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write ``folder / name`` for each name in ``model_files``, atomically."""


class NormsDetector(Detector):
    """A detector fitted on the MSMA score norms of the good training images (`fit@<name>`)."""

    fits_on: ClassVar[FitsOn] = "score_norms"

    @classmethod
    @abstractmethod
    def fit(
        cls, image_norms: np.ndarray, patch_norms: np.ndarray, models: Models, seed: int
    ) -> NormsDetector:
        """Fit on the norms (N, L) and (N, L, h, w) of the good training images."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write ``folder / name`` for each of its own files in ``model_files``, atomically."""


@dataclass
class Calibration:
    """What measuring fits for serving, from the calibration images only (none from the test set).

    ``standardizers``: every scored base method's statistics on the calibration images;
    ``composites``: each composite's fitted state (JSON-ready), e.g. the fused weights.
    """

    standardizers: dict[str, Standardizer] = field(default_factory=dict)
    composites: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class CalibrationSet:
    """The inputs a composite is fitted on: its parts' outputs on the calibration images, those
    images, their standardisation statistics and a way to score other images with the parts."""

    outputs: dict[str, MethodOutput]
    images: Callable[[], torch.Tensor]  # (N, 3, H, W) in [-1, 1], loaded on demand
    standardizers: dict[str, Standardizer]
    score: Callable[[torch.Tensor, tuple[str, ...]], dict[str, MethodOutput]]
    seed: int


class CompositeDetector(Detector):
    """A method over the outputs of other methods (``parts``), each standardised on good images."""

    fits_on: ClassVar[FitsOn] = "parts"
    parts: ClassVar[tuple[str, ...]]

    def __init__(self, state: dict[str, Any], standardizers: dict[str, Standardizer], models: Models) -> None:
        missing = [m for m in self.parts if m not in standardizers]
        if missing:
            raise ArtifactError(f"{self.name} needs the calibration statistics of {', '.join(missing)}")
        self.state, self.standardizers, self.models = state, standardizers, models

    @classmethod
    def load(cls, models: Models) -> CompositeDetector:
        return models.composite(cls.name)

    @classmethod
    def fit(cls, calibration: CalibrationSet) -> dict[str, Any]:
        """The fitted state (JSON-ready) from the calibration set; none by default."""
        return {}

    def score(self, batch: Batch) -> MethodOutput:
        raise TypeError(f"{self.name} combines its parts' outputs: use combine()")

    def needed_parts(self) -> tuple[str, ...]:
        """The parts :meth:`combine` reads with its fitted state: serving scores only these."""
        return self.parts

    @abstractmethod
    def combine(self, parts: dict[str, MethodOutput]) -> MethodOutput:
        """The composite's output from its parts' outputs on the same images."""
