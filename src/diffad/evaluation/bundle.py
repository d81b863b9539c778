"""The model bundle: everything `diffad predict` and the dashboard need, in one folder.

    bundle.json               format version, category, resolution, transform, the parameters,
                              per-method thresholds / normalisation / display range / good scores,
                              the ensemble's standardisation statistics and the fused weights
    denoiser.safetensors, gmm.json, flow.safetensors, patchcore.safetensors, padim.safetensors

Pre- and post-processing (transform, resolution, thresholds) live in the bundle, so predictions
match the evaluation that produced it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from diffad.config import params_from_dict
from diffad.errors import ArtifactError
from diffad.evaluation.fusion import FusionWeights
from diffad.evaluation.methods import Standardizer
from diffad.evaluation.models import MODEL_FILES, Models
from diffad.evaluation.thresholds import MethodThresholds

BUNDLE_FORMAT = 1


def write_bundle(
    bundle_dir: Path,
    models: Models,
    thresholds: dict[str, MethodThresholds],
    standardizers: dict[str, Standardizer],
    params,
    info: dict,
) -> None:
    """Write the bundle into a fresh temporary folder, then swap it in (never half-written)."""
    tmp = bundle_dir.with_name(bundle_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    models.copy_files(tmp)
    meta = {
        "format": BUNDLE_FORMAT,
        "category": params.data.category,
        "resolution": params.data.resolution,
        "transform": params.data.transform,
        "has_masks": bool(info.get("has_masks", False)),
        "methods": list(thresholds),
        "params": params.to_dict(),
        "thresholds": {m: t.to_dict() for m, t in thresholds.items()},
        "standardizers": {m: s.to_dict() for m, s in standardizers.items()},
        "fusion": None if models.fusion is None else models.fusion.to_dict(),
    }
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    os.replace(tmp, bundle_dir)


def load_bundle(bundle_dir: Path, device: torch.device) -> tuple[Models, dict, dict[str, MethodThresholds]]:
    """(models, bundle metadata, thresholds) of a bundle folder; ArtifactError names what is wrong."""
    meta_path = Path(bundle_dir) / "bundle.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{meta_path}: not found; is {bundle_dir} a model bundle (models/bundle)?"
        ) from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{meta_path}: not valid JSON ({exc})") from None
    if meta.get("format") != BUNDLE_FORMAT:
        raise ArtifactError(f"{meta_path}: bundle format {meta.get('format')!r}, expected {BUNDLE_FORMAT}")
    try:
        params = params_from_dict(meta["params"], source=str(meta_path))
        thresholds = {m: MethodThresholds(**t) for m, t in meta["thresholds"].items()}
        standardizers = {m: Standardizer(**s) for m, s in meta["standardizers"].items()}
        fusion = FusionWeights(**meta["fusion"]) if meta.get("fusion") else None
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{meta_path}: malformed bundle metadata ({exc})") from None
    paths = {name: Path(bundle_dir) / filename for name, filename in MODEL_FILES.items()}
    models = Models(params=params, paths=paths, device=device, standardizers=standardizers, fusion=fusion)
    return models, meta, thresholds
