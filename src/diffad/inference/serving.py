"""What is served: which model serves each category of a project and since when, and the method
`diffad predict` and the dashboard use unless told otherwise.

:func:`served_model` is the one answer to "which model serves category X" for the promotion flow
(the baseline a retrain must not fall below), the monitor (whose production scores it watches) and
the dashboard (the live model, and the reports and bundle its pages show). First match wins:

1. ``registry``: the **model registry's prod version** of X, when the caller reads a registry
   (``registry_clone``: a local clone the caller keeps in sync; :mod:`diffad.registry`). It is the
   one fact all hosts share, and what ``diffad predict --category X`` fetches and serves.
2. ``accepted``: **X's accepted run** in the project, ``runs/X/accepted/`` (its ``run.json`` and
   ``metrics.json``, which a promotion writes together): the last run of X promoted on this host.
3. ``workspace``: **the project's workspace**, ``reports/`` and ``models/bundle`` (the last
   ``dvc repro``), when it is of category X (:func:`workspace_category`): what serves X before
   its first promotion.

Why this order: a retrain with a registry publishes there before it touches the host's ``runs/``,
so prod is the newest promotion and the only one other hosts made. An accepted run passed the
promotion rule, while the workspace may hold a later ``dvc repro`` that nothing judged: taken as
the baseline or the drift reference, it would change what counts as served without a decision.
A promotion made with the project's own ``params.yaml`` also copies the run into the workspace,
so 2 and 3 are then the same model.

Since when: a promoted run serves from its ``accepted_at`` (``run.json``); the workspace from
when its bundle manifest was written (else its ``metrics.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from diffad import registry
from diffad.artifacts.layout import (
    BUNDLE,
    INFO_FILE,
    LOCK_FILE,
    AcceptedDir,
    BundleDir,
    ProjectLayout,
)
from diffad.artifacts.records import read_json_if_exists
from diffad.core.errors import ArtifactError
from diffad.registry import RegistryError, check_name, prod_version

# The method that reached both feature-memory baselines on most categories of the real-photo
# benchmark (README, "Which method to use when").
SERVED_METHOD = "fused"

REGISTRY, ACCEPTED, WORKSPACE = "registry", "accepted", "workspace"  # ServedModel.source, in priority order


def served_method(methods: Sequence[str]) -> str:
    """The method to preselect among ``methods`` (non-empty): :data:`SERVED_METHOD` when it is
    one of them, else the first."""
    return SERVED_METHOD if SERVED_METHOD in methods else methods[0]


@dataclass(frozen=True)
class ServedModel:
    """The model that serves one category, and where its files are on this host."""

    category: str
    source: str  # REGISTRY | ACCEPTED | WORKSPACE (the module docstring)
    metrics: Path | None  # its metrics.json ({method: {metric: value}}); None: the workspace has none
    since: str | None  # UTC ISO time it began to serve
    run_id: str | None = None  # the promoted run (registry, accepted)
    version: str | None = None  # the registry's version, ``fabric@v2.0.0`` (registry)
    outputs: ProjectLayout | None = None  # its reports/, models/, data/prepared/; None: not here
    bundle: BundleDir | None = None  # its model bundle; None: not on this host


def served_model(project: Path, category: str, registry_clone: Path | None = None) -> ServedModel | None:
    """The model that serves ``category`` in ``project`` (the module docstring), or None.

    :class:`~diffad.core.errors.ArtifactError` when the ``run.json`` that decides it is unreadable:
    falling back to a lower source would silently serve something else."""
    project = Path(project)
    if registry_clone is not None:
        served = _registry_prod(project, category, Path(registry_clone))
        if served is not None:
            return served
    accepted = ProjectLayout(project).runs.accepted(category)
    info = _promoted(accepted)
    if info is not None:
        return ServedModel(
            category,
            ACCEPTED,
            accepted.metrics,
            info.get("accepted_at") or _mtime(accepted.run),
            run_id=_run_id(info, accepted),
            outputs=ProjectLayout(accepted.root),
            bundle=_run_bundle(project, accepted, accepted.bundle),
        )
    return _workspace(project, category)


def workspace_category(project: Path) -> str | None:
    """The category of the project's workspace: the one its reports' ``summary.json`` names, else
    its bundle's manifest, else ``data/prepared/info.json`` (an earlier stage's, so the last
    resort among records), else ``params.yaml``'s ``data.category`` (what the last ``dvc repro``
    ran with, for reports older than ``summary.json``)."""
    layout = ProjectLayout(Path(project))
    for record in (layout.reports.summary, layout.bundle.manifest, layout.prepared / INFO_FILE):
        if name := _category_in(record):
            return name
    try:
        params = yaml.safe_load(layout.params.read_text()) if layout.params.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    data = params.get("data") if isinstance(params, dict) else None
    name = data.get("category") if isinstance(data, dict) else None
    return str(name) if name else None


def _registry_prod(project: Path, category: str, clone: Path) -> ServedModel | None:
    try:
        check_name(category)
    except RegistryError:
        return None  # not a name the registry can hold, so nothing of it is there
    version = prod_version(clone, category)
    # Each promotion commits runs/<category>/accepted/ and tags that commit prod, so the synced
    # clone's files are prod's (the registry is laid out like runs/ for the same readers).
    registered = ProjectLayout(clone).runs.accepted(category)
    info = _promoted(registered) if version is not None else None
    if info is None:
        return None
    run_id = _run_id(info, registered)
    local = ProjectLayout(project).runs.accepted(category)
    local_info = _promoted(local)
    here = local if local_info is not None and _run_id(local_info, local) == run_id else None
    fetched = BundleDir(registry.fetched_bundle(project, version))  # `diffad predict --category`
    return ServedModel(
        category,
        REGISTRY,
        registered.metrics,
        info.get("accepted_at"),
        run_id=run_id,
        version=version.tag,
        outputs=ProjectLayout(here.root) if here else None,
        bundle=_run_bundle(project, registered, here.bundle if here else fetched),
    )


def _workspace(project: Path, category: str) -> ServedModel | None:
    layout = ProjectLayout(project)
    if workspace_category(project) != category:
        return None
    metrics = layout.reports.metrics if layout.reports.metrics.is_file() else None
    bundle = layout.bundle if _category_in(layout.bundle.manifest) == category else None
    if metrics is None and bundle is None:
        return None
    since = _mtime(bundle.manifest if bundle else metrics)
    return ServedModel(category, WORKSPACE, metrics, since, outputs=layout, bundle=bundle)


def _promoted(folder: AcceptedDir) -> dict[str, Any] | None:
    """``run.json`` of a complete accepted run (the promotion writes it with ``metrics.json``)."""
    if not (folder.run.is_file() and folder.metrics.is_file()):
        return None
    info = read_json_if_exists(folder.run)
    if not isinstance(info, dict):
        raise ArtifactError(f"{folder.run}: expected a JSON object")
    return info


def _run_id(info: dict[str, Any], folder: AcceptedDir) -> str:
    return str(info.get("run_id") or folder.root.name)


def _run_bundle(project: Path, run: AcceptedDir, copy: BundleDir) -> BundleDir | None:
    """A promoted run's bundle on this host: ``copy`` when it is there, else the project's own
    ``models/bundle`` when the project's ``dvc.lock`` records the very bundle the run's does (the
    promotion's workspace update, or ``cp runs/<category>/accepted/dvc.lock . && dvc pull``)."""
    if copy.manifest.is_file():
        return copy
    own = ProjectLayout(project)
    recorded = _recorded_bundle(run.root / LOCK_FILE)
    if recorded and recorded == _recorded_bundle(own.lock) and own.bundle.manifest.is_file():
        return own.bundle
    return None


def _recorded_bundle(lock: Path) -> str | None:
    """The hash a ``dvc.lock`` records for ``models/bundle``, if any."""
    try:
        doc = yaml.safe_load(lock.read_text()) if lock.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    stages = doc.get("stages") if isinstance(doc, dict) else None
    entries = [s for s in stages.values() if isinstance(s, dict)] if isinstance(stages, dict) else []
    outs = [out for stage in entries for out in stage.get("outs") or [] if isinstance(out, dict)]
    return next((out.get("md5") for out in outs if out.get("path") == BUNDLE), None)


def _category_in(record: Path) -> str | None:
    """The ``category`` a JSON record names, if it is readable and names one."""
    try:
        doc = read_json_if_exists(record)
    except ArtifactError:
        return None
    name = doc.get("category") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else None


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
