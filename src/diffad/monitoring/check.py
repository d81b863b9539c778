"""One monitoring decision for one category: drift of the served model's production scores, and
the reviewers' verdicts that arrived since it was served; either can call for a retrain.

The *served* bundle is the bundle of the model that serves the category, and it was served from
when that model began to serve: :func:`diffad.inference.serving.served_model`, the same answer the
promotion and the dashboard use (the registry's prod version when the caller reads a registry, else
the category's accepted run, else the project's workspace when it is of that category). Only log
rows of that bundle (``bundle_id``) and method are compared with its calibration scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from diffad.artifacts.layout import BundleDir, MonitoringDir, ProjectLayout
from diffad.artifacts.runs import read_bundle_manifest
from diffad.feedback.verdicts import read_verdicts
from diffad.inference.scores_log import bundle_id, read_scores_log
from diffad.inference.serving import served_model
from diffad.monitoring.drift import DriftReport, drift_statistics, recent_window
from diffad.monitoring.settings import MonitoringSettings


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


def served_bundle(
    project: Path, category: str, registry_clone: Path | None = None
) -> tuple[Path | None, str | None]:
    """(bundle folder, served since) of ``category`` (see the module docstring); the folder is None
    when no model serves it or its bundle is not on this host (``registry_clone``: a synced local
    copy of the model registry, :mod:`diffad.registry`)."""
    served = served_model(project, category, registry_clone)
    if served is None:
        return None, None
    return (served.bundle.root if served.bundle is not None else None), served.since


def check_category(
    project: Path,
    category: str,
    cfg: MonitoringSettings,
    method: str | None = None,
    log_root: Path | None = None,
    registry_clone: Path | None = None,
) -> MonitorCheck:
    """The decision for ``category`` (``log_root``: another scores-log folder than the project's;
    ``registry_clone``: see :func:`served_bundle`)."""
    layout = ProjectLayout(Path(project))
    bundle, since = served_bundle(layout.root, category, registry_clone)
    verdicts = read_verdicts(layout.feedback.verdicts(category))
    new = sum(1 for v in verdicts if since is None or v.instant > _time(since))
    reasons = (
        [f"{new} new verdicts since the served model (limit {cfg.new_verdicts})"]
        if new >= cfg.new_verdicts
        else []
    )
    if bundle is None:
        note = "no served bundle of this category on this host"
        return MonitorCheck(category, None, method, since, None, new, bool(reasons), tuple(reasons), note)
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


def _time(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
