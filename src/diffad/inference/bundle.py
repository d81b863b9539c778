"""The model bundle: everything `diffad predict` and the dashboard need, in one folder.

    bundle.json               format version, category, resolution, transform, the parameters,
                              per-method operating point (threshold, the policy that chose it and
                              its parameters, calibration support), normalisation, display range,
                              calibration scores and their statistics (thresholds.py), the
                              standardisation statistics (from the calibration images) and the
                              composite methods' fitted state (``composites``: the fused weights)
    the model files of the bundle's methods (each detector's ``model_files``: denoiser.safetensors,
    gmm.json, flow.safetensors, patchcore.safetensors, padim.safetensors for the default methods)

Pre- and post-processing (transform, resolution, thresholds) live in the bundle, so predictions
match the evaluation that produced it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from diffad.artifacts.layout import BundleDir
from diffad.artifacts.runs import read_bundle_manifest, write_bundle_manifest
from diffad.config import params_from_dict
from diffad.detectors.base import Calibration, Standardizer, is_composite, model_files
from diffad.errors import ArtifactError, ConfigError
from diffad.evaluation.thresholds import MethodThresholds
from diffad.inference.models import Models


def thresholds_json(thresholds: dict[str, MethodThresholds]) -> dict[str, dict]:
    """The bundle's ``thresholds`` object: method -> :meth:`MethodThresholds.to_dict`."""
    return {m: t.to_dict() for m, t in thresholds.items()}


def write_bundle(
    bundle_dir: Path,
    models: Models,
    thresholds: dict[str, MethodThresholds],
    calibration: Calibration,
    params,
    info: dict,
) -> None:
    """Write the bundle into a fresh temporary folder, then swap it in (never half-written)."""
    tmp = bundle_dir.with_name(bundle_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    models.copy_files(tmp, tuple(thresholds))
    meta = {
        "category": params.data.category,
        "resolution": params.data.resolution,
        "transform": params.data.transform,
        "has_masks": bool(info.get("has_masks", False)),
        "methods": list(thresholds),
        "params": params.to_dict(),
        "thresholds": thresholds_json(thresholds),
        "standardizers": {m: s.to_dict() for m, s in calibration.standardizers.items()},
        "composites": calibration.composites,
    }
    write_bundle_manifest(BundleDir(tmp), meta)
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    os.replace(tmp, bundle_dir)


def load_bundle(bundle_dir: Path, device: torch.device) -> tuple[Models, dict, dict[str, MethodThresholds]]:
    """(models, bundle metadata, thresholds) of a bundle folder; ArtifactError names what is wrong."""
    bundle = BundleDir(Path(bundle_dir))
    meta_path = bundle.manifest
    meta = read_bundle_manifest(bundle)
    try:
        # `runtime` says where the producer ran (device, threads), not what the model is; bundles
        # from before threads became a fixed count carry `threads: 0`, which params.yaml refuses.
        model_params = {k: v for k, v in meta["params"].items() if k != "runtime"}
        params = params_from_dict(model_params, source=str(meta_path))
        thresholds = {m: MethodThresholds.from_dict(t) for m, t in meta["thresholds"].items()}
        standardizers = {m: Standardizer(**s) for m, s in meta["standardizers"].items()}
        composites = meta.get("composites")
        if composites is None:  # written before composites had a key of their own
            composites = {m: {} for m in meta["methods"] if is_composite(m)}
            if meta.get("fusion"):
                composites["fused"] = meta["fusion"]
        files = model_files(tuple(meta["methods"]))
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{meta_path}: malformed bundle metadata ({exc})") from None
    except ConfigError as exc:  # a method this installation does not have
        raise ArtifactError(f"{meta_path}: {exc}") from None
    paths = {name: bundle.model_file(name) for name in files}
    calibration = Calibration(standardizers, composites)
    models = Models(params=params, paths=paths, device=device, calibration=calibration)
    return models, meta, thresholds
