"""The fitted models of one category, loaded once, scoring images with every registered method.

``Models.score`` is the single code path from images to method outputs used by `evaluate`,
`diffad predict` and the dashboard, so all three agree by construction. Which methods exist, what
they load and how they score is the detectors' business (:mod:`diffad.components.methods`); this module
only loads shared parts once (the denoiser), runs the base methods a request needs, then the
composites over them.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffad.components.detector import Batch, Calibration, CompositeDetector, Detector, MethodOutput
from diffad.components.methods import detector_class, model_files, scored_methods
from diffad.components.model_context import ModelContext
from diffad.core.errors import ArtifactError


@dataclass
class Models(ModelContext):
    """Loaded models + the parameters they were built with (:class:`ModelContext`), scoring images.

    ``calibration``: what `evaluate` fitted on the calibration images for the composite methods
    (from the bundle when serving); a new object is made with it (:meth:`with_calibration`), the
    models are never changed after the fact.
    """

    calibration: Calibration | None = None

    def with_calibration(self, calibration: Calibration) -> Models:
        """The same loaded models, serving the composites fitted in ``calibration``."""
        return dataclasses.replace(self, calibration=calibration, _cache=self._cache)

    def detector(self, name: str) -> Detector:
        """The loaded base detector ``name`` (composites: :meth:`composite`)."""
        cls = detector_class(name)
        if issubclass(cls, CompositeDetector):
            return self.composite(name)
        return self.shared(f"detector:{name}", lambda: cls.load(self))

    def composite(self, name: str) -> CompositeDetector:
        cls = detector_class(name)
        if self.calibration is None:
            raise ArtifactError(
                f"{name} needs the calibration statistics of its parts (bundle.json); run `evaluate` first"
            )
        if name not in self.calibration.composites:
            raise ArtifactError(
                f"{name} needs its fitted state (bundle.json 'composites'); run `evaluate` first"
            )
        return cls(self.calibration.composites[name], self.calibration.standardizers, self)

    def score_norms(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """MSMA score norms (N, L), (N, L, h, w) of ``images`` (N, 3, H, W) in [-1, 1]."""
        from diffad.components.score_norms import as_cached, compute_score_norms, score_sigmas

        cfg = self.params.score_norms
        norms = compute_score_norms(
            self.denoiser(),
            images,
            score_sigmas(cfg),
            cfg,
            device=self.device,
            generator=torch.Generator().manual_seed(self.params.seed),
        )
        cached = as_cached(norms)  # what the models were fitted on: scores equal evaluate's
        return cached.image_norms, cached.patch_norms

    def score(
        self,
        images: torch.Tensor,
        methods: tuple[str, ...],
        norms: tuple[np.ndarray, np.ndarray] | None = None,
        timings: dict[str, float] | None = None,
    ) -> dict[str, MethodOutput]:
        """Score ``images`` (N, 3, H, W) in [-1, 1] with ``methods``.

        ``norms``: precomputed MSMA score norms for these images (the `score_norms` output);
        computed from the denoiser when absent (once for every method that needs them).
        ``timings`` accumulates seconds per base method.
        """
        timings = {} if timings is None else timings
        composites = [m for m in methods if issubclass(detector_class(m), CompositeDetector)]
        combiners = {m: self.composite(m) for m in composites}  # fail before any work
        batch = Batch(images, norms, self.score_norms)
        needed = [m for m in methods if m not in combiners]
        needed += [p for combiner in combiners.values() for p in combiner.needed_parts()]
        out: dict[str, MethodOutput] = {}
        for name in scored_methods(needed):
            start = time.perf_counter()
            out[name] = self.detector(name).score(batch)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        for name, combiner in combiners.items():
            out[name] = combiner.combine(out)
        return {m: out[m] for m in methods}

    def copy_files(self, bundle_dir: Path, methods: tuple[str, ...]) -> None:
        """Copy the model files of ``methods`` into ``bundle_dir`` under their bundle names."""
        for name in model_files(methods):
            shutil.copy2(self.file(name), bundle_dir / name)
