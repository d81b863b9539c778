"""The fitted models of one category, loaded once, scoring images with every method.

``Models.score`` is the single code path from images to method outputs used by `evaluate`,
`diffad predict` and the dashboard, so all three agree by construction.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from diffad.config import Params
from diffad.errors import ArtifactError
from diffad.evaluation.fusion import FUSION_IMAGE_PARTS, FUSION_MAP_PARTS, FusionWeights, fused_output
from diffad.evaluation.methods import (
    ENSEMBLE_PARTS,
    MSMA_METHODS,
    MethodOutput,
    Standardizer,
    ensemble_output,
    msma_outputs,
)

# Model files, by the name they have inside a bundle.
MODEL_FILES = {
    "denoiser": "denoiser.safetensors",
    "gmm": "gmm.json",
    "flow": "flow.safetensors",
    "patchcore": "patchcore.safetensors",
    "padim": "padim.safetensors",
}


@dataclass
class Models:
    """Loaded models + the parameters they were built with. Missing parts load lazily."""

    params: Params
    paths: dict[str, Path]
    device: torch.device
    standardizers: dict[str, Standardizer] = field(default_factory=dict)
    fusion: FusionWeights | None = None  # the fused method's weights (chosen by `evaluate`)
    _cache: dict[str, object] = field(default_factory=dict)

    def _get(self, name: str):
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str):
        cfg = self.params
        if name == "ddim":  # built from the denoiser and the backbone, no file of its own
            from diffad.diffusion.detector import DDIMDetector

            return DDIMDetector(self._get("denoiser"), self._ddim_extractor(), cfg.evaluate.ddim, self.device)
        path = self.paths.get(name)
        if path is None or not Path(path).exists():
            raise ArtifactError(f"{path or name}: model file missing; run `dvc repro` first")
        if name == "denoiser":
            from diffad.diffusion.checkpoint import load_denoiser

            return load_denoiser(path, self.device)
        if name == "gmm":
            from diffad.density.gmm import GMMModel

            return GMMModel.load(path)
        if name == "flow":
            from diffad.flow.patchflow import load_patchflow

            return load_patchflow(path, self.device)
        if name in ("patchcore", "padim"):
            from diffad.baselines.padim import PaDiM
            from diffad.baselines.patchcore import PatchCore

            cls = PatchCore if name == "patchcore" else PaDiM
            return cls.load(path, None, self.device)  # backbone set-up comes from the file
        raise KeyError(name)

    def _ddim_extractor(self):
        from diffad.features.backbone import FeatureExtractor

        return FeatureExtractor(blocks=self.params.evaluate.ddim.feature_blocks).to(self.device)

    def score_norms(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """MSMA score norms (N, L), (N, L, h, w) of ``images`` (N, 3, H, W) in [-1, 1]."""
        from diffad.msma.scores import compute_score_norms, score_sigmas

        cfg = self.params.cache_scores
        norms = compute_score_norms(
            self._get("denoiser"),
            images,
            score_sigmas(cfg),
            cfg,
            device=self.device,
            generator=torch.Generator().manual_seed(self.params.seed),
        )
        return norms.image_norms, norms.patch_norms

    def score(
        self,
        images: torch.Tensor,
        methods: tuple[str, ...],
        norms: tuple[np.ndarray, np.ndarray] | None = None,
        timings: dict[str, float] | None = None,
    ) -> dict[str, MethodOutput]:
        """Score ``images`` (N, 3, H, W) in [-1, 1] with ``methods``.

        ``norms``: precomputed MSMA score norms for these images (the `cache_scores` output);
        computed from the denoiser when absent. ``timings`` accumulates seconds per method.
        """
        timings = {} if timings is None else timings
        wanted = set(methods) | (set(ENSEMBLE_PARTS) if "ensemble" in methods else set())
        if "fused" in methods:
            wanted |= set(FUSION_MAP_PARTS) | set(FUSION_IMAGE_PARTS)
        out: dict[str, MethodOutput] = {}
        resolution = images.shape[-1]
        if wanted & set(MSMA_METHODS):
            start = time.perf_counter()
            image_norms, patch_norms = norms if norms is not None else self.score_norms(images)
            msma = msma_outputs(
                image_norms,
                patch_norms,
                self._get("gmm"),
                self._get("flow"),
                resolution=resolution,
                device=self.device,
                topk=self.params.evaluate.flow_topk,
            )
            seconds = time.perf_counter() - start
            for name in MSMA_METHODS:
                out[name] = msma[name]
                timings[name] = timings.get(name, 0.0) + seconds
        for name in ("ddim", "patchcore", "padim"):
            if name in wanted:
                start = time.perf_counter()
                result = self._get(name).score(images)
                out[name] = MethodOutput(np.asarray(result[0], np.float64), np.asarray(result[1], np.float32))
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        if "ensemble" in methods:
            if not self.standardizers:
                raise ArtifactError("ensemble needs the good-image statistics of its parts (bundle.json)")
            out["ensemble"] = ensemble_output(out, self.standardizers)
            timings["ensemble"] = sum(timings[m] for m in ENSEMBLE_PARTS)  # the parts' running totals
        if "fused" in methods:
            if self.fusion is None:
                raise ArtifactError("fused needs its weights (bundle.json 'fusion'); run `evaluate` first")
            how = self.params.evaluate.fused_image_score
            out["fused"] = fused_output(out, self.standardizers, self.fusion, how)
            timings["fused"] = sum(timings[m] for m in set(FUSION_MAP_PARTS) | set(FUSION_IMAGE_PARTS))
        return {m: out[m] for m in methods}

    def copy_files(self, bundle_dir: Path) -> None:
        """Copy every model file into ``bundle_dir`` under its bundle name."""
        for name, filename in MODEL_FILES.items():
            if name in self.paths and Path(self.paths[name]).exists():
                shutil.copy2(self.paths[name], bundle_dir / filename)
