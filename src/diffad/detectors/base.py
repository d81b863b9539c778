"""The detector interface: images -> image scores (N,) and anomaly maps (N, H, W), and the registry.

The same detectors serve `evaluate`, `diffad predict` and the dashboard, so a bundle scores an
image exactly as the evaluation did (pre- and post-processing live in the detector, not in the
callers). What a detector is fitted on (``fits_on``):

    images       good training images; ``fit`` + ``save`` run in the `fit_baselines` stage
    score_norms  the cached MSMA score norms (`fit_gmm`, `train_flow` fit them)
    denoiser     nothing of its own: built from the trained denoiser (DDIM reconstruction)
    parts        a composite: combines the outputs of other methods, each standardised by its
                 statistics on the calibration images; fitted by `evaluate` (:class:`Calibration`)

``model_files`` names the files a detector loads, by their name inside a model bundle; the
bundle holds exactly the files of its methods. Heavy imports (torch, the models) happen inside
the methods, so listing the detectors and their metadata stays cheap (the dashboard does).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from diffad.detectors import method_names
from diffad.errors import ArtifactError, ConfigError

if TYPE_CHECKING:
    import torch

    from diffad.inference.models import Models

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
    (the `cache_scores` output); otherwise ``compute_norms(images)`` runs on first use.
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


class ImageDetector(Detector):
    """A detector fitted on good training images (`fit_baselines` fits and saves every one)."""

    fits_on: ClassVar[FitsOn] = "images"

    @classmethod
    @abstractmethod
    def fit(cls, images: torch.Tensor, models: Models, seed: int) -> ImageDetector:
        """Fit on good ``images`` (N, 3, H, W) in [-1, 1]; ``models`` gives params, device, backbone."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write ``folder / name`` for each name in ``model_files``, atomically."""


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

    @abstractmethod
    def combine(self, parts: dict[str, MethodOutput]) -> MethodOutput:
        """The composite's output from its parts' outputs on the same images."""


_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: the one registration of a method (its module's name is its name)."""
    module = cls.__module__.rpartition(".")[2]
    if cls.name != module:
        raise TypeError(f"{cls.__module__}: detector {cls.name!r} must live in a module named {cls.name}.py")
    _REGISTRY[cls.name] = cls
    return cls


def detector_class(name: str) -> type[Detector]:
    """The registered detector ``name`` (its module is imported on first use)."""
    if name not in _REGISTRY:
        if name not in method_names():
            raise ConfigError(f"unknown method {name!r} (known: {', '.join(method_names())})")
        importlib.import_module(f"{__package__}.{name}")
        if name not in _REGISTRY:
            raise TypeError(f"{__package__}.{name}: defines no @register-ed detector named {name!r}")
    return _REGISTRY[name]


def detector_classes(names: Iterable[str] | None = None) -> list[type[Detector]]:
    """Detectors ``names`` (default: every registered one), in table order."""
    classes = [detector_class(n) for n in (method_names() if names is None else names)]
    return sorted(classes, key=lambda c: (c.order, c.name))


def method_order() -> tuple[str, ...]:
    """Every registered method's name in table order (diffusion methods, composites, baselines)."""
    return tuple(c.name for c in detector_classes())


def is_composite(name: str) -> bool:
    return issubclass(detector_class(name), CompositeDetector)


def scored_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """The base methods ``methods`` need scored: themselves and the parts of each composite, in
    that order, once each."""
    methods = tuple(methods)
    parts = [p for m in methods if is_composite(m) for p in detector_class(m).parts]
    nested = [p for p in parts if is_composite(p)]
    if nested:
        raise ConfigError(f"composite parts must be base methods, got {nested}")
    return tuple(m for m in dict.fromkeys(methods + tuple(parts)) if not is_composite(m))


def model_files(methods: Iterable[str]) -> tuple[str, ...]:
    """The files (bundle names) ``methods`` load, their parts' included, once each."""
    return tuple(dict.fromkeys(f for m in scored_methods(methods) for f in detector_class(m).model_files))
