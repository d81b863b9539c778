"""One monitoring decision for one category: drift of the served model's production scores, and
the reviewers' verdicts that arrived since it was served; either can call for a retrain.

The *served* bundle is the category's accepted run (``runs/<category>/accepted/models/bundle``),
else the project's ``models/bundle`` when it is of that category; it was served from the
accepted run's ``accepted_at`` (else the bundle manifest's modification time). Only log rows of
that bundle (``bundle_id``) and method are compared with its calibration scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from diffad.artifacts.layout import BundleDir, MonitoringDir, ProjectLayout
from diffad.artifacts.records import read_json_if_exists
from diffad.artifacts.runs import read_bundle_manifest
from diffad.config import MonitoringConfig
from diffad.errors import ArtifactError
from diffad.feedback.verdicts import read_verdicts
from diffad.monitoring.drift import DriftReport, drift_statistics, recent_window
from diffad.monitoring.scores_log import bundle_id, read_scores_log


@dataclass(frozen=True)
class MonitorCheck:
    category: str
    bundle_id: str | None
    method: str | None
    served_since: str | None  # UTC ISO time the served bundle was put in place
    drift: DriftReport | None  # None: no bundle or no scores of it
    new_verdicts: int  # verdict rows newer than served_since
    retrain: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""  # why no decision could be made, if so


def served_bundle(project: Path, category: str) -> tuple[Path | None, str | None]:
    """(bundle folder, served since) of ``category`` (see the module docstring)."""
    layout = ProjectLayout(project)
    accepted = layout.runs.accepted(category)
    if accepted.bundle.manifest.is_file():
        run = read_json_if_exists(accepted.run) or {}
        return accepted.bundle.root, run.get("accepted_at") or _mtime(accepted.bundle.manifest)
    own = layout.bundle
    if own.manifest.is_file():
        try:
            if read_bundle_manifest(own).get("category") == category:
                return own.root, _mtime(own.manifest)
        except ArtifactError:
            pass
    return None, None


def check_category(
    project: Path,
    category: str,
    cfg: MonitoringConfig,
    method: str | None = None,
    log_root: Path | None = None,
) -> MonitorCheck:
    """The decision for ``category`` (``log_root``: another scores-log folder than the project's)."""
    layout = ProjectLayout(Path(project))
    bundle, since = served_bundle(layout.root, category)
    verdicts = read_verdicts(layout.feedback.verdicts(category))
    new = sum(1 for v in verdicts if since is None or v.instant > _time(since))
    reasons = (
        [f"{new} new verdicts since the served model (limit {cfg.new_verdicts})"]
        if new >= cfg.new_verdicts
        else []
    )
    if bundle is None:
        note = "no served bundle of this category"
        return MonitorCheck(category, None, method, None, None, new, bool(reasons), tuple(reasons), note)
    served = bundle_id(bundle)
    logs = layout.monitoring if log_root is None else MonitoringDir(Path(log_root))
    log = read_scores_log(logs.scores_log(category))
    mine = log[log["bundle_id"] == served]
    if method is None and len(mine):
        method = str(mine.sort_values("time", kind="stable")["method"].iloc[-1])
    thresholds = read_bundle_manifest(BundleDir(bundle))["thresholds"].get(method or "")
    if thresholds is None:
        note = (
            f"no production scores of the served bundle {served}"
            if method is None
            else f"bundle lacks {method!r}"
        )
        return MonitorCheck(category, served, method, since, None, new, bool(reasons), tuple(reasons), note)
    window = recent_window(log, served, method, cfg.window)
    drift = drift_statistics(
        window["score"].to_numpy(), np.asarray(thresholds["good_scores"]), float(thresholds["threshold"]), cfg
    )
    if drift.drifted:
        reasons = [f"score drift: {'; '.join(drift.reasons)}", *reasons]
    note = "" if drift.enough else f"{drift.n} images of {served} in the log, fewer than {cfg.min_images}"
    return MonitorCheck(category, served, method, since, drift, new, bool(reasons), tuple(reasons), note)


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()


def _time(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
