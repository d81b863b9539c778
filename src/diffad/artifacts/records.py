"""The shape of every JSON artifact, with typed readers and writers (paths: :mod:`.layout`).

Each document except ``metrics.json`` and the headline files carries ``schema_version``
(:data:`SCHEMA_VERSION`); ``metrics.json`` is the flat ``{method: {metric: value}}`` with every
metric, ``summary.json`` beside it carries the version of the reports, and the headline files
(``metrics/<method>.json``, :data:`HEADLINE_KEYS`) are what ``dvc metrics`` and ``dvc exp show``
read. Writers are atomic (temp file + rename); readers raise :class:`ArtifactError` naming the file
and what is wrong with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from diffad.artifacts.layout import HeadlineDir, ReportsDir, ValidationDir
from diffad.core.errors import ArtifactError
from diffad.core.files import atomic_write

SCHEMA_VERSION = 1
BUNDLE_FORMAT = 3  # bundle.json "format", bumped when a bundle can no longer be loaded as before:
#   3: "files": the sha256 of every file the bundle holds, verified on load
#   2: operating point from the calibration split (1: max-F1 on the test labels)
METRIC_KEYS = (  # the per-method keys of metrics.json that consumers show, in display order
    "image_auroc",
    "image_ap",
    "pixel_auroc",
    "aupro",
    "image_f1",
    "image_precision",
    "image_false_alarm_rate",
    "image_miss_rate",
    "pixel_f1",
    "image_f1_oracle",
    "calibration_false_alarm_rate_upper",
    "ms_per_image",
)
# The headline (metrics/<method>.json): "which method, how good" in a few columns of `dvc metrics show`.
HEADLINE_KEYS = ("image_auroc", "pixel_auroc", "aupro", "image_f1")
LISTED_FILES = 10  # offending files per check carried into a run record / the Prefect artifact

Metrics = dict[str, dict[str, float | None]]  # {"<method>": {"image_auroc": 0.97, ...}}


# ------------------------------------------------------------------ plain JSON


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    text = json.dumps(payload, indent=2) + "\n"
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> Any:
    """Parsed JSON; :class:`ArtifactError` when absent or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None


def read_json_if_exists(path: Path) -> Any:
    """Parsed JSON, or None when the file does not exist."""
    return read_json(path) if Path(path).exists() else None


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None (missing, null, NaN, bool, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 6) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    return obj


def _versioned(path: Path, kind: str) -> dict[str, Any]:
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise ArtifactError(f"{path}: expected a JSON object ({kind})")
    version = doc.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ArtifactError(f"{path}: {kind} schema_version {version!r}, this code reads {SCHEMA_VERSION}")
    return doc


# ------------------------------------------------------------------ reports


EVALUATION_RESOLUTION = "evaluation_resolution"  # metrics.json's one top-level number: map/mask side, px


def write_metrics(
    path: Path, metrics: Mapping[str, Mapping[str, Any]], evaluation_resolution: int | None = None
) -> Path:
    """``metrics.json``: flat ``{method: {metric: value}}`` (null where not applicable), and the side
    of the masks and maps the pixel metrics were computed on under ``evaluation_resolution``."""
    doc: dict[str, Any] = {m: dict(v) for m, v in metrics.items()}
    if evaluation_resolution is not None:
        doc[EVALUATION_RESOLUTION] = int(evaluation_resolution)
    return write_json(path, _rounded(doc))


def read_metrics(path: Path) -> Metrics:
    """``{method: {metric: float | None}}``; :class:`ArtifactError` if absent or of another shape."""
    raw = read_json(path)
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != EVALUATION_RESOLUTION}
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, dict) for v in raw.values()):
        raise ArtifactError(f"{path}: expected {{method: {{metric: value}}}}, got {raw!r:.200}")
    return {m: {k: finite(v) for k, v in values.items()} for m, values in raw.items()}


def write_headline(folder: HeadlineDir, metrics_file: Path) -> list[Path]:
    """``metrics/<method>.json``: :data:`HEADLINE_KEYS` of each method of ``metrics_file`` (the full
    ``metrics.json`` as written), plus its top-level numbers (e.g. the evaluation resolution) in
    every file; files of methods no longer evaluated are removed."""
    raw = read_json(metrics_file)
    if not isinstance(raw, dict):
        raise ArtifactError(f"{metrics_file}: expected {{method: {{metric: value}}}}")
    shared = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    methods = {m: v for m, v in raw.items() if isinstance(v, dict)}
    written = [
        write_json(folder.method(m), _rounded({**{k: values.get(k) for k in HEADLINE_KEYS}, **shared}))
        for m, values in methods.items()
    ]
    for stale in set(folder.methods()) - set(methods):
        folder.method(stale).unlink()
    return written


def read_headline(folder: HeadlineDir) -> Metrics:
    """``{method: {key: float | None}}`` from ``metrics/*.json``; empty when there are none."""
    table: Metrics = {}
    for method in folder.methods():
        raw = read_json(folder.method(method))
        if not isinstance(raw, dict):
            raise ArtifactError(f"{folder.method(method)}: expected {{metric: value}}, got {raw!r:.200}")
        table[method] = {k: finite(v) for k, v in raw.items()}
    return table


def write_timing(reports: ReportsDir, ms_per_image: Mapping[str, float]) -> Path:
    """``timing.json``: ``{method: {"ms_per_image": ms}}``, the wall clock kept out of ``dvc.lock``."""
    return write_json(
        reports.timing, {m: {"ms_per_image": round(float(v), 3)} for m, v in ms_per_image.items()}
    )


def read_timing(reports: ReportsDir) -> Metrics:
    """``{method: {"ms_per_image": ms}}``; empty when the file is absent (e.g. an accepted run's
    copy made before it existed)."""
    raw = read_json_if_exists(reports.timing)
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ArtifactError(f"{reports.timing}: expected {{method: {{ms_per_image: value}}}}")
    return {m: {k: finite(v) for k, v in values.items()} for m, values in raw.items()}


def read_evaluation_resolution(path: Path) -> int | None:
    """The side (px) of the masks and maps ``metrics.json``'s pixel metrics were computed on;
    None for a file written before it was recorded."""
    raw = read_json(path)
    value = raw.get(EVALUATION_RESOLUTION) if isinstance(raw, dict) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def write_per_defect(reports: ReportsDir, per_defect: Mapping[str, Any], notes: list[str]) -> Path:
    doc = {"schema_version": SCHEMA_VERSION, "methods": dict(per_defect), "notes": list(notes)}
    return write_json(reports.per_defect, _rounded(doc))


def read_per_defect(reports: ReportsDir) -> tuple[dict[str, dict[str, dict[str, float | None]]], list[str]]:
    """({method: {defect: {metric: value}}}, notes)."""
    doc = _versioned(reports.per_defect, "per-defect metrics")
    methods = doc.get("methods")
    if not isinstance(methods, dict):
        raise ArtifactError(f"{reports.per_defect}: lacks 'methods'")
    table = {
        m: {
            d: {k: finite(v) for k, v in block.items()}
            for d, block in defects.items()
            if isinstance(block, dict)
        }
        for m, defects in methods.items()
        if isinstance(defects, dict)
    }
    return table, [str(n) for n in doc.get("notes") or []]


@dataclass(frozen=True)
class ReportSummary:
    """``summary.json``: what the reports are about."""

    category: str
    has_masks: bool
    methods: list[str]
    n_test: int  # labelled test images (the metrics are over these)
    n_unknown: int  # unlabelled test images: scored and shown, not measured
    device: str = "cpu"
    torch_threads: int = 1
    fusion: dict | None = None  # the fused method's weights, chosen on synthetic defects
    evaluation_resolution: int | None = None  # side of the masks and maps of the pixel metrics, px
    schema_version: int = SCHEMA_VERSION


def write_summary(reports: ReportsDir, summary: ReportSummary) -> Path:
    return write_json(reports.summary, asdict(summary))


def read_summary(reports: ReportsDir) -> ReportSummary:
    doc = _versioned(reports.summary, "report summary")
    known = {f.name for f in fields(ReportSummary)}
    try:
        return ReportSummary(**{k: v for k, v in doc.items() if k in known})
    except TypeError as exc:
        raise ArtifactError(f"{reports.summary}: malformed ({exc})") from None


# ------------------------------------------------------------------ validation


@dataclass(frozen=True)
class CheckResult:
    """One check of the data validation suite as written in ``validation.json``."""

    name: str
    description: str
    success: bool
    observed: Any
    offending_count: int = 0
    offending: list[dict[str, Any]] = field(default_factory=list)  # {"path", "value"}, capped
    error: str | None = None

    @property
    def offending_files(self) -> list[str]:
        return [str(o.get("path")) for o in self.offending if isinstance(o, dict) and o.get("path")]


@dataclass(frozen=True)
class ValidationResult:
    """``validation.json``: the overall verdict and every check, failures first."""

    success: bool
    rows: int
    manifest: str
    checks: list[CheckResult]
    schema_version: int = SCHEMA_VERSION

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "success": self.success,
            "checks_failed": len(self.failed),
            "checks_total": len(self.checks),
            "rows": self.rows,
            "manifest": self.manifest,
            "checks": [asdict(c) for c in self.checks],
        }

    def digest(self, listed: int = LISTED_FILES) -> dict[str, Any]:
        """What a run record keeps: the verdict and every check, with its first offending files."""
        return {
            "success": self.success,
            "failed": [c.name for c in self.failed],
            "checks": [
                {
                    "name": c.name,
                    "description": c.description,
                    "success": c.success,
                    "observed": c.observed,
                    "offending_count": c.offending_count,
                    "offending_files": c.offending_files[:listed],
                    "error": c.error,
                }
                for c in self.checks
            ],
        }


def validation_from_dict(doc: Mapping[str, Any], source: str = "validation report") -> ValidationResult:
    checks = doc.get("checks")
    if not isinstance(checks, list) or "success" not in doc:
        raise ArtifactError(f"{source}: expected {{success, checks: [...]}}, got keys {sorted(doc)}")
    known = {f.name for f in fields(CheckResult)}
    try:
        parsed = [CheckResult(**{k: v for k, v in c.items() if k in known}) for c in checks]
    except (TypeError, AttributeError) as exc:
        raise ArtifactError(f"{source}: malformed check ({exc})") from None
    return ValidationResult(
        success=bool(doc["success"]),
        rows=int(doc.get("rows") or 0),
        manifest=str(doc.get("manifest") or ""),
        checks=parsed,
        schema_version=int(doc.get("schema_version", SCHEMA_VERSION)),
    )


def write_validation(folder: ValidationDir, result: ValidationResult, html: str | None = None) -> Path:
    """``validation.json`` (+ ``validation.html``) and the flat ``summary.json`` for ``dvc metrics``."""
    write_json(folder.report, result.to_dict())
    write_json(
        folder.summary,
        {
            "passed": int(result.success),
            "checks_failed": len(result.failed),
            "checks_total": len(result.checks),
            "rows": result.rows,
        },
    )
    if html is not None:
        atomic_write(folder.html, lambda tmp: tmp.write_text(html))
    return folder.report


def read_validation(folder: ValidationDir) -> ValidationResult:
    return validation_from_dict(_versioned(folder.report, "validation report"), str(folder.report))


def copy_validation(source: ValidationDir, target: ValidationDir) -> ValidationResult | None:
    """Copy a validation report (json and html) to ``target``; the parsed report, or None if absent."""
    if not source.report.exists():
        return None
    result = read_validation(source)
    write_validation(target, result, source.html.read_text() if source.html.exists() else None)
    return result
