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

A bundle is published whole (:func:`diffad.core.files.publish_version`: an immutable version folder,
then one rename of the pointer) and loaded whole (:func:`load_bundle`: the manifest read once,
every file's sha256 checked against it, each file held open for the loader's lifetime), so a
reader never mixes two bundles' files, and a damaged byte is refused naming the file. The bundle
id is the first 16 hex digits of the manifest's sha256, which covers every file through their sums.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from diffad.artifacts.layout import MANIFEST, BundleDir
from diffad.artifacts.records import BUNDLE_FORMAT
from diffad.artifacts.runs import write_bundle_manifest
from diffad.components.detector import Calibration, Standardizer
from diffad.components.methods import is_composite, model_files
from diffad.config import params_from_dict
from diffad.core.errors import ArtifactError, ConfigError, DiffadError
from diffad.core.files import current_version, publish_version, sha256_of
from diffad.inference.decision import MethodThresholds, OperatingPoint
from diffad.inference.models import Models

ID_DIGITS = 16  # bundle id: this many hex digits of the manifest's sha256
MAX_MANIFEST_BYTES = 64 << 20  # a manifest holds calibration scores, not weights
_CATEGORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def thresholds_json(thresholds: dict[str, MethodThresholds]) -> dict[str, dict]:
    """The bundle's ``thresholds`` object: method -> :meth:`MethodThresholds.to_dict`."""
    return {m: t.to_dict() for m, t in thresholds.items()}


def manifest_id(data: bytes) -> str:
    """The bundle id of a manifest's bytes."""
    return hashlib.sha256(data).hexdigest()[:ID_DIGITS]


def write_bundle(
    bundle_dir: Path,
    models: Models,
    thresholds: dict[str, MethodThresholds],
    calibration: Calibration,
    params,
    info: dict,
) -> Path:
    """Publish a new bundle version under ``bundle_dir`` (readers see the old one or this one,
    whole); returns the version's folder."""
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

    def build(folder: Path) -> str:
        models.copy_files(folder, tuple(thresholds))
        manifest = write_bundle_manifest(BundleDir(folder), meta)
        return manifest_id(manifest.read_bytes())

    return publish_version(Path(bundle_dir), build)


class OpenFiles:
    """Files held open by descriptor: what was verified is what the loaders read, even when the
    version folder is removed or replaced meanwhile. Closed with the object."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def open(self, path: Path) -> int:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        self.fds[str(path)] = fd
        return fd

    @staticmethod
    def path(fd: int, fallback: Path) -> Path:
        """A path that reads the open file (Linux ``/proc``), else the file's own path."""
        proc = Path(f"/proc/self/fd/{fd}")
        return proc if proc.exists() else fallback

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def __del__(self) -> None:
        self.close()


@dataclass
class LoadedBundle:
    """A verified bundle: its models, manifest, thresholds and id (the manifest's hash)."""

    models: Models
    meta: dict[str, Any]
    thresholds: dict[str, MethodThresholds]
    bundle_id: str
    folder: Path  # the version read


def load_bundle(bundle_dir: Path, device: torch.device) -> LoadedBundle:
    """The bundle served by ``bundle_dir``, verified and loaded once; ArtifactError names the file
    (and key) that is wrong."""
    for attempt in range(3):
        try:
            folder = current_version(Path(bundle_dir))
        except DiffadError as exc:
            raise ArtifactError(str(exc)) from None
        try:
            return _load_version(BundleDir(folder), device)
        except FileNotFoundError as exc:
            # the version was pruned between reading the pointer and opening its files (newer ones
            # were published meanwhile): read the pointer again; a file missing for good is named
            if attempt == 2 and Path(exc.filename).name == MANIFEST:
                raise ArtifactError(
                    f"{exc.filename}: not found; is {bundle_dir} a model bundle (models/bundle)?"
                ) from None
            if attempt == 2:
                raise ArtifactError(
                    f"{exc.filename}: missing from the bundle; rebuild it (`dvc repro`)"
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _load_version(bundle: BundleDir, device: torch.device) -> LoadedBundle:
    meta_path = bundle.root / MANIFEST
    try:
        with open(meta_path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ArtifactError(f"{meta_path}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{meta_path}: larger than {MAX_MANIFEST_BYTES >> 20} MiB; not a bundle manifest")
    try:
        meta = json.loads(data)  # NaN / Infinity parse: check_manifest names their key
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ArtifactError(
            f"{meta_path}: bundle format {found!r}, expected {BUNDLE_FORMAT}; rebuild it with `dvc repro`"
        )
    check_manifest(meta, str(meta_path))
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
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{meta_path}: malformed bundle metadata ({exc})") from None
    except ConfigError as exc:  # a method this installation does not have
        raise ArtifactError(f"{meta_path}: {exc}") from None
    if params.data.resolution != meta["resolution"] or params.data.category != meta["category"]:
        raise ArtifactError(f"{meta_path}: resolution / category differ from params.data's")
    missing = sorted(set(files) - set(meta["files"]))
    if missing:
        raise ArtifactError(f"{meta_path}: files: {', '.join(missing)} missing (the methods need them)")
    held = OpenFiles()
    paths = {name: _verified(bundle.root / name, meta["files"][name], held) for name in meta["files"]}
    calibration = Calibration(standardizers, composites)
    models = Models(params=params, paths=paths, device=device, calibration=calibration)
    models.shared("open bundle files", lambda: held)  # kept open as long as the models
    return LoadedBundle(models, meta, thresholds, manifest_id(data), bundle.root)


def _verified(path: Path, expected: str, held: OpenFiles) -> Path:
    """Open ``path``, check its sha256; a path reading that open file."""
    try:
        fd = held.open(path)
    except FileNotFoundError:
        raise
    except OSError as exc:  # a link (O_NOFOLLOW), a folder, no permission
        raise ArtifactError(f"{path}: cannot be read ({exc.strerror})") from None
    digest = sha256_of(fd)
    if digest != expected:
        raise ArtifactError(
            f"{path}: sha256 {digest[:12]}… differs from bundle.json's {expected[:12]}…; "
            "the file was changed or damaged after the bundle was written (rebuild it: `dvc repro`)"
        )
    return OpenFiles.path(fd, path)


# ------------------------------------------------------------------ manifest values


def check_manifest(meta: dict[str, Any], source: str) -> None:
    """Every value predict uses, checked before any is used: ArtifactError ``<file>: <key>: ...``."""

    def fail(key: str, what: str) -> None:
        raise ArtifactError(f"{source}: {key}: {what}")

    category = meta.get("category")
    if not isinstance(category, str) or not _CATEGORY.fullmatch(category) or category in (".", ".."):
        fail("category", f"{str(category)[:80]!r} is not a category name (letters, digits, . _ -)")
    resolution = meta.get("resolution")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 8 <= resolution <= 4096:
        fail("resolution", f"{str(resolution)[:80]!r} is not a whole number of pixels in [8, 4096]")
    if not isinstance(meta.get("transform"), str):
        fail("transform", "missing or not text")
    methods = meta.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        fail("methods", "not a list of method names")
    for key in ("params", "thresholds", "standardizers", "files"):
        if not isinstance(meta.get(key), dict):
            fail(key, "missing or not an object")
    for name, digest in meta["files"].items():
        if not isinstance(name, str) or "/" in name or name in ("", ".", "..", MANIFEST):
            fail("files", f"{str(name)[:80]!r} is not a file name of the bundle folder")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            fail(f"files.{name}", "not a sha256 (64 hex digits)")
    for method in methods:
        t = meta["thresholds"].get(method)
        if not isinstance(t, dict):
            fail(f"thresholds.{method}", "missing or not an object")
        _check_thresholds(t, f"thresholds.{method}", fail)


def _check_thresholds(t: dict[str, Any], key: str, fail) -> None:
    def number(k: str, value: Any, optional: bool = False) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            fail(k, f"{str(value)[:80]!r} is not a finite number")

    for name in ("threshold",):
        number(f"{key}.{name}", t.get(name))
    for name in ("pixel_threshold", "map_vmin", "map_vmax"):
        number(f"{key}.{name}", t.get(name), optional=True)
    for name in ("normalizer", "reference_normalizer", "good_stats"):
        values = t.get(name)
        if not isinstance(values, dict):
            fail(f"{key}.{name}", "missing or not an object")
        for k, v in values.items():
            number(f"{key}.{name}.{k}", v)
    good = t.get("good_scores")
    if not isinstance(good, list):
        fail(f"{key}.good_scores", "missing or not a list")
    for i, v in enumerate(good):
        number(f"{key}.good_scores[{i}]", v)
    if any(b < a for a, b in zip(good, good[1:], strict=False)):
        fail(f"{key}.good_scores", "not sorted (percentiles would be wrong)")
    point = t.get("operating_point")
    if not isinstance(point, dict):
        fail(f"{key}.operating_point", "missing or not an object")
    number(f"{key}.operating_point.threshold", point.get("threshold"))
    if point.get("threshold") != t.get("threshold"):
        fail(f"{key}.operating_point.threshold", "differs from the method's threshold")
    unknown = set(point) - {f for f in OperatingPoint.__dataclass_fields__}
    if unknown:
        fail(f"{key}.operating_point", f"unknown keys {sorted(unknown)}")
