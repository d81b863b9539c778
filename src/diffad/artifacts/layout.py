"""Where every artifact lives: the one place that spells a path under ``reports/``, ``models/``
and ``runs/`` (and the display copies under ``data/prepared/``).

Stages get their folders from ``dvc.yaml`` on the command line (``--reports reports``, ``--bundle
models/bundle``, ...); the classes here name the files *inside* those folders. The flows and the
dashboard read a whole project, so :class:`ProjectLayout` also names the folders themselves (the
two that production fills while a model is served, ``data/feedback/`` and ``data/monitoring/``, are
named in :mod:`diffad.artifacts.production_data`)::

    metrics/<method>.json              headline: image/pixel AUROC, AUPRO, F1   dvc metrics (in git)
    reports/                           ReportsDir (evaluate --reports)
        metrics.json                   {method: {metric: value}}, every metric
        timing.json                    {method: ms_per_image}: wall clock, no DVC output
        metrics_per_defect.json        {"schema_version", "methods": {method: {defect: {...}}}, "notes"}
        summary.json                   category, counts, methods, schema_version
        scores.csv                     one row per test image
        curves/{roc,pr,pro}.csv        long format method, x, y          dashboard, dvc plots
        curves/{roc,pr,pro}.png        offline renders
        heatmaps/<m>/maps.npy, heatmaps/<m>/<defect>/<stem>.png
        mistakes/<m>.png
        validation/                    ValidationDir (convert_dataset --report)
            validation.json            every check, observed value, offending files
            validation.html
            summary.json               flat counts                       dvc metrics
    models/bundle/CURRENT              BundleDir: names the version served (diffad.core.files.publish_version)
    models/bundle/v-<bundle id>/       one immutable version: bundle.json (the manifest, with the
                                       sha256 of every file; see records.py) and the model files
    data/prepared/display/<split>/<defect>/<stem>.png   test images at display resolution
    runs/                              RunsDir: the retrain flows' records
        <category>/accepted/           the promoted run: metrics.json, run.json, dvc.lock,
                                       params.yaml, reports/, models/ (project layout)
        <category>/last_run.json       the latest attempt
        history/<run_id>.json          one run record per retrain, whatever its outcome
        history/<run_id>/validation/   the run's validation report (kept when it was rejected)
        history/<run_id>/feedback.json verdicts used, false-alarm rate on reviewed false alarms
    data/feedback/                     FeedbackDir: reviewers' verdicts (a dep of convert_dataset)
        <category>.jsonl               append-only verdict rows (diffad.feedback.verdicts)
        images/<sha256>.<ext>          the reviewed image, copied at review time
        masks/<sha256>.png             accepted defect masks (content-addressed), source geometry
    data/monitoring/<category>/        MonitoringDir: production scores (no DVC stage reads it)
        scores.jsonl                   one row per image `diffad predict` scored (inference.scores_log)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from diffad.artifacts.production_data import FEEDBACK, MONITORING, FeedbackDir, MonitoringDir
from diffad.core.errors import DiffadError
from diffad.core.files import current_version

REPORTS = "reports"
HEADLINE = "metrics"  # HeadlineDir: the few numbers per method that `dvc metrics` and `dvc exp show` print
MODELS = "models"
RUNS = "runs"
BUNDLE = "models/bundle"
PREPARED = "data/prepared"
MANIFEST_FILE = "manifest.csv"  # data/prepared/manifest.csv (columns: diffad.data.manifest)
INFO_FILE = "info.json"  # data/prepared/info.json
PARAMS_FILE = "params.yaml"
MANIFEST = "bundle.json"  # a bundle version's manifest
LOCK_FILE = "dvc.lock"
CURVE_NAMES = ("roc", "pr", "pro")
DISPLAY_MAX_SIDE = 512  # display copies of test images: the source's side, at most this
# The metrics file of a run relative to its project (the retrain flows' default), and the
# validation report relative to it.
METRICS_FILE = f"{REPORTS}/metrics.json"
VALIDATION_DIR = f"{REPORTS}/validation"
VALIDATION_FILE = f"{VALIDATION_DIR}/validation.json"


@dataclass(frozen=True)
class ValidationDir:
    """``convert_dataset --report <root>``: the data validation report."""

    root: Path

    @property
    def report(self) -> Path:
        return self.root / "validation.json"

    @property
    def html(self) -> Path:
        return self.root / "validation.html"

    @property
    def summary(self) -> Path:
        """Flat counts for ``dvc metrics`` (the report itself nests a list of checks)."""
        return self.root / "summary.json"


@dataclass(frozen=True)
class ReportsDir:
    """``evaluate --reports <root>``: what the evaluation wrote."""

    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def per_defect(self) -> Path:
        return self.root / "metrics_per_defect.json"

    @property
    def timing(self) -> Path:
        """Inference ms per image: wall clock varies run to run, so it is no DVC output (it would
        change ``dvc.lock`` on every run)."""
        return self.root / "timing.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def scores(self) -> Path:
        return self.root / "scores.csv"

    @property
    def curves(self) -> Path:
        return self.root / "curves"

    def curve_table(self, name: str) -> Path:
        """Long-format ``method, x, y`` of one curve (all methods)."""
        return self.curves / f"{name}.csv"

    def curve_png(self, name: str) -> Path:
        return self.curves / f"{name}.png"

    @property
    def heatmaps(self) -> Path:
        return self.root / "heatmaps"

    def maps(self, method: str) -> Path:
        """float16 ``(N_test, H, W)`` raw anomaly maps in ``scores.csv`` order."""
        return self.heatmaps / method / "maps.npy"

    def overlay(self, method: str, defect: str, image_path: str) -> Path:
        return self.heatmaps / method / str(defect) / f"{PurePosixPath(str(image_path)).stem}.png"

    @property
    def mistakes(self) -> Path:
        return self.root / "mistakes"

    def mistake_montage(self, method: str) -> Path:
        return self.mistakes / f"{method}.png"

    @property
    def validation(self) -> ValidationDir:
        return ValidationDir(self.root / "validation")


@dataclass(frozen=True)
class HeadlineDir:
    """``evaluate --headline <root>``: one small JSON per method, the stage's ``dvc.yaml`` metrics.

    One file per method gives ``dvc metrics show`` one row per method; the files are committed to
    git (``cache: false``), so ``dvc metrics diff`` and ``dvc exp show`` work on a fresh clone.
    """

    root: Path

    def method(self, method: str) -> Path:
        return self.root / f"{method}.json"

    def methods(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []


@dataclass(frozen=True)
class BundleDir:
    """``evaluate --bundle <root>``: the model bundle, a folder of immutable versions and the
    pointer to the one served (a plain folder holding ``bundle.json`` is one version itself).

    ``manifest`` and ``model_file`` resolve the pointer on every call: code that reads more than
    one file resolves :meth:`current` once and reads everything from it.
    """

    root: Path

    def current(self) -> BundleDir:
        """The version served now (a :class:`BundleDir` of a plain folder)."""
        return BundleDir(current_version(self.root))

    @property
    def manifest(self) -> Path:
        """``bundle.json`` of the version served (a damaged pointer: the folder's own, which is
        absent; :func:`diffad.artifacts.runs.read_bundle_manifest` names the pointer)."""
        try:
            return self.current().root / MANIFEST
        except DiffadError:
            return self.root / MANIFEST

    def model_file(self, filename: str) -> Path:
        return self.current().root / filename


def display_path(image_path: str) -> str:
    """The display copy of a prepared image: ``images/test/hole/000.png`` ->
    ``display/test/hole/000.png`` (same folder structure, larger side; see prepare)."""
    parts = PurePosixPath(str(image_path)).parts
    return PurePosixPath("display", *parts[1:]).as_posix() if len(parts) > 1 else f"display/{image_path}"


@dataclass(frozen=True)
class AcceptedDir:
    """``runs/<category>/accepted/``: the promoted run, outputs in project layout."""

    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def run(self) -> Path:
        return self.root / "run.json"

    @property
    def reports(self) -> ReportsDir:
        return ReportsDir(self.root / REPORTS)

    @property
    def bundle(self) -> BundleDir:
        return BundleDir(self.root / BUNDLE)

    @property
    def prepared(self) -> Path:
        return self.root / PREPARED


@dataclass(frozen=True)
class RunsDir:
    """``runs/``: the retrain flows' records inside the project."""

    root: Path

    def category(self, name: str) -> Path:
        return self.root / name

    def accepted(self, category: str) -> AcceptedDir:
        return AcceptedDir(self.category(category) / "accepted")

    def incoming(self, category: str, run_id: str) -> Path:
        """Where a promotion assembles ``accepted/`` before swapping it in."""
        return self.category(category) / f".accepted.{run_id}"

    def last_run(self, category: str) -> Path:
        return self.category(category) / "last_run.json"

    @property
    def history(self) -> Path:
        return self.root / "history"

    def record(self, run_id: str) -> Path:
        return self.history / f"{run_id}.json"

    def validation(self, run_id: str) -> ValidationDir:
        """The validation report a run's gate produced, kept beside its record."""
        return ValidationDir(self.history / run_id / "validation")

    def feedback(self, run_id: str) -> Path:
        """What a run did with the reviewers' verdicts (diffad.feedback.effect), beside its record."""
        return self.history / run_id / "feedback.json"

    def accepted_categories(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob("*/accepted") if p.is_dir())


@dataclass(frozen=True)
class ProjectLayout:
    """A whole project (or a staging workspace) as the flows and the dashboard read it."""

    root: Path

    @property
    def reports(self) -> ReportsDir:
        return ReportsDir(self.root / REPORTS)

    @property
    def headline(self) -> HeadlineDir:
        return HeadlineDir(self.root / HEADLINE)

    @property
    def validation(self) -> ValidationDir:
        return self.reports.validation

    @property
    def bundle(self) -> BundleDir:
        return BundleDir(self.root / BUNDLE)

    @property
    def prepared(self) -> Path:
        return self.root / PREPARED

    @property
    def runs(self) -> RunsDir:
        return RunsDir(self.root / RUNS)

    @property
    def params(self) -> Path:
        return self.root / PARAMS_FILE

    @property
    def feedback(self) -> FeedbackDir:
        return FeedbackDir(self.root / FEEDBACK)

    @property
    def monitoring(self) -> MonitoringDir:
        return MonitoringDir(self.root / MONITORING)

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE
