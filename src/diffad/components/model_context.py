"""What a detector is fitted and loaded with: the parameters, the device, the model files by their
bundle name, and the parts several detectors share (the pixel denoiser, a backbone), built once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffad.core.errors import ArtifactError


@dataclass
class ModelContext:
    """``params``: the typed parameters (:class:`diffad.config.Params`); ``paths``: model file by its
    bundle name (``gmm.json``, ``patchcore.safetensors``, ...); shared parts load lazily."""

    params: Any
    paths: dict[str, Path]
    device: Any  # torch.device
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def file(self, name: str) -> Path:
        """The path of model file ``name``; ArtifactError when it is missing."""
        path = self.paths.get(name)
        if path is None or not Path(path).exists():
            raise ArtifactError(f"{path or name}: model file missing; run `dvc repro` first")
        return Path(path)

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        """A part several detectors use (the denoiser, a backbone), built once."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def denoiser(self):
        """The trained pixel denoiser (``denoiser.safetensors``)."""
        from diffad.components.denoiser.checkpoint import load_denoiser

        return self.shared("denoiser", lambda: load_denoiser(self.file("denoiser.safetensors"), self.device))
