"""Finding and loading the pipeline's artifacts: read only, missing files named.

Every path and JSON shape comes from the artifact contract (:mod:`diffad.artifacts`); relative to
the project root (``$DIFFAD_ROOT``, else the working directory):

    reports/, data/prepared/, models/bundle/   the project's workspace: the last `dvc repro`
                                               (or the promoted retrain) of one category
    runs/<category>/accepted/                  each category's accepted retrain (Prefect flows)
    runs/history/                              one record per retrain, whatever its outcome

Which of them a page shows for a category is the model that serves it
(:func:`diffad.inference.serving.served_model`), the same answer the monitor and the promotion use.

Loaders raise :class:`MissingArtifact` naming the file when it is absent or unreadable; the pages
turn that into a "run `dvc repro` first" message instead of a traceback. Large files (CSV, maps)
are cached by path and modification time, so a rewritten artifact is reloaded.

``reports/heatmaps/<method>/maps.npy``: float16 ``(N_test, H, W)`` whose row i belongs to the
i-th row of ``reports/scores.csv`` with ``split == "test"``. A file whose N differs is ignored; the
gallery then shows the PNGs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from diffad import registry
from diffad.artifacts import records
from diffad.artifacts.layout import (
    CURVE_NAMES,
    INFO_FILE,
    BundleDir,
    ProjectLayout,
    ReportsDir,
    RunsDir,
    ValidationDir,
    display_path,
)
from diffad.artifacts.records import METRIC_KEYS, ReportSummary, ValidationResult
from diffad.artifacts.runs import read_bundle_manifest
from diffad.components.methods import method_order
from diffad.core.errors import ArtifactError
from diffad.inference.serving import ServedModel, served_model, workspace_category

ROOT_ENV = "DIFFAD_ROOT"
METRIC_LABELS = {
    "image_auroc": "image AUROC",
    "image_ap": "image AP",
    "pixel_auroc": "pixel AUROC",
    "aupro": "AUPRO",
    "image_f1": "image F1",
    "image_precision": "precision",
    "image_false_alarm_rate": "false-alarm rate",
    "image_miss_rate": "miss rate",
    "pixel_f1": "pixel F1",
    "image_f1_oracle": "oracle max F1 (test labels)",
    "calibration_false_alarm_rate_upper": "false-alarm bound (calib., 95 %)",
    "ms_per_image": "ms / image",
}
METHOD_ORDER = method_order()  # the registry's order: diffusion methods, composites, baselines
NORM_THRESHOLD = 100.0  # normalized scores live in [0, 1000] with the decision threshold here


class MissingArtifact(Exception):
    """An artifact the page needs is absent or unreadable; ``path`` names it."""

    def __init__(self, path: Path, reason: str = "not found") -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


@dataclass(frozen=True)
class Category:
    """One category's artifacts; ``prepared`` / ``bundle`` are None when not on disk for it.

    ``source``: where the model that serves it is (:data:`diffad.inference.serving.ServedModel.source`):
    "workspace" (the project's own reports/), "accepted" (runs/<name>/accepted/) or "registry"."""

    name: str
    reports: Path
    prepared: Path | None
    bundle: Path | None
    source: str = "workspace"

    @property
    def files(self) -> ReportsDir:
        return ReportsDir(self.reports)


def contract_load(reader: Any, path: Path, *args: Any) -> Any:
    """``reader(*args)`` of the artifact contract, its ArtifactError as :class:`MissingArtifact`."""
    if not Path(path).exists():
        raise MissingArtifact(path)
    try:
        return reader(*args)
    except ArtifactError as exc:
        raise MissingArtifact(path, str(exc).removeprefix(f"{path}: ")) from None


def project_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or Path.cwd()).resolve()


REGISTRY_ENV = "DIFFAD_REGISTRY"  # git URL of the model registry the hosts share (diffad.registry)
REGISTRY_SYNC_S = 30.0  # a page fetches the registry at most this often
_registry_synced: dict[str, float] = {}


def registry_url() -> str:
    """The model registry the pages read (``$DIFFAD_REGISTRY``), "" for none."""
    return os.environ.get(REGISTRY_ENV, "").strip()


def registry_clone(root: Path) -> Path | None:
    """With ``$DIFFAD_REGISTRY``, this host's copy of the registry (``runs/.registry``), fetched at
    most every :data:`REGISTRY_SYNC_S`; None without a registry.

    An unreachable registry raises :class:`diffad.registry.RegistryError` the first time; later,
    the last fetched copy is used (the error is logged)."""
    url = registry_url()
    if not url:
        return None
    clone = registry.local_clone(root)
    now = time.monotonic()
    if now - _registry_synced.get(url, -REGISTRY_SYNC_S) >= REGISTRY_SYNC_S or not (clone / ".git").exists():
        try:
            registry.sync(url, clone)
            _registry_synced[url] = now
        except registry.RegistryError:
            if not (clone / ".git").exists():
                raise
            logging.getLogger(__name__).exception("registry %s unreachable; showing the last copy", url)
    return clone


def runs_dir(root: Path) -> RunsDir:
    """The run records the pages show: with ``$DIFFAD_REGISTRY``, the registry's (every host's runs
    and the prod models); else the project's own ``runs/``."""
    clone = registry_clone(root)
    return ProjectLayout(root).runs if clone is None else ProjectLayout(clone).runs


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


@st.cache_data(show_spinner=False, max_entries=256)
def _json_cached(path: str, stamp: int) -> Any:
    return json.loads(Path(path).read_text())


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; MissingArtifact when absent or not valid JSON."""
    if not path.is_file():
        raise MissingArtifact(path)
    try:
        return _json_cached(str(path), _stamp(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MissingArtifact(path, f"unreadable ({exc})") from None


def read_json_or(path: Path, default: Any) -> Any:
    try:
        return read_json(path)
    except MissingArtifact:
        return default


# ------------------------------------------------------------------ categories


def _category_of(path: Path) -> str | None:
    value = read_json_or(path, {})
    return (
        value.get("category") if isinstance(value, dict) and isinstance(value.get("category"), str) else None
    )


def find_categories(root: Path) -> list[Category]:
    """Every category there is something of to show, each shown from the model that serves it
    (:func:`diffad.inference.serving.served_model`): the workspace's category first (``current``
    when nothing names it), then each accepted retrain's under ``runs/`` and, with
    ``$DIFFAD_REGISTRY``, each one in the registry.

    A workspace whose category is served by an accepted run is not shown (a later ``dvc repro``
    nothing judged); one that serves nothing yet (only a validation report) is."""
    layout = ProjectLayout(root)
    clone = registry_clone(root)
    main = layout.reports
    workspace = None
    if any(f.is_file() for f in (main.metrics, main.scores, main.validation.report)):
        workspace = workspace_category(root) or "current"
    names = [workspace] if workspace else []
    names += layout.runs.accepted_categories()
    names += ProjectLayout(clone).runs.accepted_categories() if clone is not None else []
    found = []
    for name in dict.fromkeys(names):
        try:
            served = served_model(root, name, clone)
        except ArtifactError:  # an unreadable run.json: the live model says so on the Overview
            logging.getLogger(__name__).exception("%s: which model serves it is unreadable", name)
            served = None
        if served is not None:
            found.append(_shown(layout, served))
        elif name == workspace:
            prepared = layout.prepared if layout.prepared.is_dir() else None
            found.append(Category(name, main.root, prepared, None))
    return found


def _shown(layout: ProjectLayout, served: ServedModel) -> Category:
    """The category as its served model has it on this host: its reports (else the folder of its
    metrics.json, all a registry version from another host has here), its prepared data (else the
    workspace's when that is of this category) and its bundle."""
    outputs = served.outputs
    if outputs is not None and (outputs.reports.root.is_dir() or served.metrics is None):
        reports = outputs.reports.root
    else:
        reports = served.metrics.parent
    prepared = outputs.prepared if outputs is not None and outputs.prepared.is_dir() else None
    shared = layout.prepared
    if prepared is None and shared.is_dir() and _category_of(shared / INFO_FILE) == served.category:
        prepared = shared
    bundle = served.bundle.root if served.bundle is not None else None
    return Category(served.category, reports, prepared, bundle, source=served.source)


# ------------------------------------------------------------------ metrics


def as_number(value: Any) -> float:
    """A metric value as float; null, strings and non-finite values become NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


# Okabe-Ito's colour-blind-safe hues (yellow swapped for olive, readable on white), one per method
# of METHOD_ORDER: Vega's default scheme gave two blues, two greens and two pinks to eight methods.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999933")


def method_colour(method: str) -> str:
    """A method's line colour, the same on every chart whatever else is shown."""
    rank = method_rank(method)[0]
    if rank < len(METHOD_ORDER):
        return PALETTE[rank % len(PALETTE)]
    return PALETTE[sum(map(ord, method)) % len(PALETTE)]  # a method added later: stable too


def metrics_frame(raw: Any) -> pd.DataFrame:
    """``{method: {metric: value}}`` -> DataFrame indexed by method, columns METRIC_KEYS (NaN = n/a)."""
    rows = {
        m: {k: as_number(v.get(k)) for k in METRIC_KEYS}
        for m, v in (raw or {}).items()
        if isinstance(v, dict)
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_KEYS), dtype=float)
    return frame.loc[sorted(frame.index, key=method_rank)].rename_axis("method")


def read_metrics(cat: Category) -> pd.DataFrame:
    """Every metric of ``metrics.json``, with the inference time of ``timing.json`` when it exists."""
    path = cat.files.metrics
    metrics = contract_load(records.read_metrics, path, path)
    timing = contract_load(records.read_timing, path, cat.files)
    return metrics_frame({m: {**values, **timing.get(m, {})} for m, values in metrics.items()})


def metrics_table(categories: list[Category]) -> pd.DataFrame:
    """Category x method rows with every metric; categories without metrics.json are left out."""
    parts = []
    for cat in categories:
        try:
            frame = read_metrics(cat)
        except MissingArtifact:
            continue
        parts.append(frame.reset_index().assign(category=cat.name))
    if not parts:
        return pd.DataFrame(columns=["category", "method", *METRIC_KEYS])
    return pd.concat(parts, ignore_index=True)[["category", "method", *METRIC_KEYS]]


LOWER_IS_BETTER = frozenset(
    {"ms_per_image", "image_false_alarm_rate", "image_miss_rate", "calibration_false_alarm_rate_upper"}
)


# One side of the trade-off a threshold makes: 0 % false alarms is easy by missing most defects, so
# neither rate is ever "best" on its own (F1 at the same threshold weighs both).
THRESHOLD_RATES = frozenset({"image_false_alarm_rate", "image_miss_rate"})


def best_mask(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Boolean frame like ``table``: True where a value is its category's best in that column
    (highest; lowest for times). Ties are all best; missing values and :data:`THRESHOLD_RATES`
    never are."""
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    for col in (c for c in columns if c not in THRESHOLD_RATES):
        values = table[col].astype(float)
        best = values.groupby(table["category"]).transform("min" if col in LOWER_IS_BETTER else "max")
        mask[col] = np.isclose(values, best) & values.notna()
    return mask


def read_per_defect(cat: Category) -> tuple[pd.DataFrame, list[str]]:
    """(rows method, defect, metrics..., notes)."""
    table, notes = contract_load(records.read_per_defect, cat.files.per_defect, cat.files)
    rows = [
        {"method": m, "defect": d, **{k: as_number(v.get(k)) for k in METRIC_KEYS}}
        for m, defects in table.items()
        for d, v in defects.items()
    ]
    return pd.DataFrame(rows, columns=["method", "defect", *METRIC_KEYS]), notes


def read_summary(cat: Category) -> ReportSummary | None:
    try:
        return contract_load(records.read_summary, cat.files.summary, cat.files)
    except MissingArtifact:
        return None


# ------------------------------------------------------------------ scores, curves, heatmaps


@st.cache_data(show_spinner=False, max_entries=32)
def _csv_cached(path: str, stamp: int) -> pd.DataFrame:
    return pd.read_csv(path)


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise MissingArtifact(path)
    try:
        frame = _csv_cached(str(path), _stamp(path))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pandas' parser errors are ValueErrors
        raise MissingArtifact(path, f"unreadable ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MissingArtifact(path, f"lacks columns {', '.join(missing)}")
    return frame


def _as_bool(column: pd.Series) -> pd.Series:
    if column.dtype == bool:
        return column
    return column.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def read_scores(cat: Category) -> pd.DataFrame:
    """scores.csv, test rows only, with ``pos`` = the row's index into maps.npy and bool decisions."""
    frame = read_csv(cat.files.scores, ("path", "label", "defect")).copy()
    if "split" in frame.columns:
        frame = frame[frame["split"].astype(str) == "test"]
    frame = frame.reset_index(drop=True)
    frame["pos"] = np.arange(len(frame))
    for m in score_methods(frame):
        if f"{m}_anomalous" in frame.columns:
            frame[f"{m}_anomalous"] = _as_bool(frame[f"{m}_anomalous"])
        elif f"{m}_norm" in frame.columns:
            frame[f"{m}_anomalous"] = frame[f"{m}_norm"] >= NORM_THRESHOLD
    return frame


def score_methods(scores: pd.DataFrame) -> list[str]:
    return sorted((c[: -len("_score")] for c in scores.columns if c.endswith("_score")), key=method_rank)


def read_curves(cat: Category) -> dict[str, pd.DataFrame]:
    """{"roc"|"pr"|"pro": DataFrame(method, x, y)} for the curve files present (at least one)."""
    curves = {}
    for name in CURVE_NAMES:
        try:
            curves[name] = read_csv(cat.files.curve_table(name), ("method", "x", "y"))
        except MissingArtifact:
            continue
    if not curves:
        raise MissingArtifact(cat.files.curve_table(CURVE_NAMES[0]))
    return curves


@st.cache_resource(show_spinner=False, max_entries=16)
def _maps_cached(path: str, stamp: int) -> np.ndarray:
    return np.load(path, mmap_mode="r", allow_pickle=False)


def heat_maps(cat: Category, method: str, n_test: int) -> np.ndarray | None:
    """(N_test, H, W) memory-mapped raw maps of ``method``, or None when absent or misaligned."""
    path = cat.files.maps(method)
    if not path.is_file():
        return None
    try:
        maps = _maps_cached(str(path), _stamp(path))
    except (OSError, ValueError):
        return None
    return maps if maps.ndim == 3 and maps.shape[0] == n_test else None


@st.cache_data(show_spinner=False, max_entries=32)
def _robust_range(path: str, stamp: int, good_rows: tuple[int, ...]) -> tuple[float, float]:
    maps = np.load(path, mmap_mode="r", allow_pickle=False)
    reference = np.asarray(maps[list(good_rows)] if good_rows else maps, np.float32)
    vmin = float(np.median(reference))
    vmax = float(np.quantile(np.asarray(maps, np.float32), 0.995))
    return vmin, max(vmax, vmin + 1e-6)


def map_range(cat: Category, method: str, good_rows: tuple[int, ...]) -> tuple[float, float]:
    """Colour scale (vmin, vmax) of a method's maps: the bundle's (as evaluate drew the PNGs), else
    the median of the good images' maps to the 99.5th percentile of all maps."""
    if cat.bundle is not None:
        try:
            meta = read_bundle_manifest(BundleDir(cat.bundle))
        except ArtifactError:
            meta = {}
        t = (meta.get("thresholds") or {}).get(method) or {}
        vmin, vmax = as_number(t.get("map_vmin")), as_number(t.get("map_vmax"))
        if math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin:
            return vmin, vmax
    path = cat.files.maps(method)
    return _robust_range(str(path), _stamp(path), good_rows)


def overlay_png(cat: Category, method: str, defect: str, image_path: str) -> Path | None:
    """The overlay evaluate saved for this test image, if any."""
    path = cat.files.overlay(method, defect, image_path)
    return path if path.is_file() else None


def prepared_file(cat: Category, relative: str) -> Path | None:
    if cat.prepared is None or not isinstance(relative, str) or not relative:
        return None
    path = cat.prepared / relative
    return path if path.is_file() else None


def mask_file(cat: Category, defect: str, image_path: str) -> Path | None:
    return prepared_file(cat, f"masks/test/{defect}/{Path(image_path).stem}.png")


def display_file(cat: Category, image_path: str) -> Path | None:
    """The test image at display resolution (convert_dataset's copy), else the prepared image."""
    return prepared_file(cat, display_path(image_path)) or prepared_file(cat, image_path)


# ------------------------------------------------------------------ data quality, bundle


def read_validation(folder: ValidationDir) -> ValidationResult:
    """A validation report (``validation.json``) through the contract."""
    return contract_load(records.read_validation, folder.report, folder)


def validation_table(result: ValidationResult) -> pd.DataFrame:
    """One row per check, failures first: success, check, description, observed, offending count,
    offending files (a list)."""
    rows = [
        {
            "success": c.success,
            "check": c.name,
            "description": c.description,
            "observed": _short(c.observed) if c.error is None else f"could not evaluate: {c.error}",
            "offending_count": int(c.offending_count),
            "offending": c.offending_files,
        }
        for c in result.checks
    ]
    columns = ["success", "check", "description", "observed", "offending_count", "offending"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("success", kind="stable").reset_index(drop=True)


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@st.cache_resource(show_spinner="Loading the model bundle…", max_entries=2)
def _predictor_cached(bundle: str, stamp: int) -> Any:
    from diffad.inference.predict import Predictor  # lazy: pulls torch, only the Inspect page needs it

    return Predictor.load(bundle, device="cpu")


def load_predictor(bundle: Path) -> Any:
    """``diffad.inference.predict.Predictor`` of a bundle folder (cached until bundle.json changes)."""
    meta = BundleDir(bundle).manifest
    if not meta.is_file():
        raise MissingArtifact(meta)
    return _predictor_cached(str(bundle), _stamp(meta))


def clear_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
