"""One answer to "which model serves category X": the promotion's baseline, the monitor's served
bundle, the dashboard's live model and the reports and bundle it shows all name the same model.

The layouts are the ones that split those four places. ``fabric`` was retrained and promoted
(``runs/fabric/accepted/``, and the workspace updated to it, as the retrain flow does when the run
used the project's ``params.yaml``); then someone ran ``dvc repro`` in the project with other
parameters, so the workspace now holds a newer fabric run that nothing judged. With a model
registry, another host has since promoted a third fabric run, and this host fetched its bundle.

Everything is written by the pipeline's own writers (``publish_accepted``, ``update_project``,
``registry.publish``, the bundle's ``publish_version`` + ``write_bundle_manifest``,
``write_metrics``, ``write_summary``, ``write_accepted_info``); only ``dvc.lock`` and
``params.yaml``, which DVC and the user write, are spelt here.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboard import data, live
from diffad import registry
from diffad.artifacts.layout import LOCK_FILE, METRICS_FILE, BundleDir, ProjectLayout, ReportsDir
from diffad.artifacts.records import ReportSummary, read_json, read_metrics, write_metrics, write_summary
from diffad.artifacts.runs import write_accepted_info, write_bundle_manifest
from diffad.core.files import publish_version
from diffad.inference.scores_log import bundle_id
from diffad.monitoring import check
from flows import promotion

CATEGORY = "fabric"
PROMOTED_RUN = "20261201T020000Z-fabric-0promoted"
OTHER_HOST_RUN = "20261203T020000Z-fabric-0therhost"
PROMOTED = {"padim": {"image_auroc": 0.91, "pixel_auroc": 0.93, "aupro": 0.80}}
RERUN = {"padim": {"image_auroc": 0.62, "pixel_auroc": 0.70, "aupro": 0.41}}
OTHER_HOST = {"padim": {"image_auroc": 0.95, "pixel_auroc": 0.96, "aupro": 0.88}}


def _publish_bundle(folder: Path, weights: bytes) -> str:
    """A bundle version as ``write_bundle`` publishes one; returns its ``dvc.lock`` hash."""

    def build(staging: Path) -> str:
        (staging / "padim.safetensors").write_bytes(weights)
        manifest = write_bundle_manifest(
            BundleDir(staging), {"category": CATEGORY, "methods": ["padim"], "thresholds": {}}
        )
        return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]

    publish_version(folder, build)
    return f"{hashlib.md5(weights).hexdigest()}.dir"  # DVC hashes the folder; any stable id will do


def _dvc_repro(root: Path, metrics: dict, weights: bytes) -> None:
    """What ``dvc repro`` leaves in ``root``: evaluate's reports and bundle, and their dvc.lock."""
    layout = ProjectLayout(root)
    write_metrics(layout.reports.metrics, metrics)
    write_summary(layout.reports, ReportSummary(CATEGORY, True, ["padim"], 4, 0))
    bundle_hash = _publish_bundle(layout.bundle.root, weights)
    outs = [{"path": "reports", "md5": f"{hashlib.md5(repr(metrics).encode()).hexdigest()}.dir"}]
    outs.append({"path": "models/bundle", "md5": bundle_hash})
    layout.lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"evaluate": {"outs": outs}}}))
    layout.params.write_text(yaml.safe_dump({"data": {"category": CATEGORY}}))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Promoted, then re-run by hand (the module docstring); no registry unless a test sets one."""
    monkeypatch.delenv(data.REGISTRY_ENV, raising=False)
    project, staging = tmp_path / "project", tmp_path / "staging"
    _dvc_repro(staging, PROMOTED, b"promoted weights")
    run = {"run_id": PROMOTED_RUN, "category": CATEGORY}
    promotion.publish_accepted(project, CATEGORY, staging, METRICS_FILE, ["reports", "models"], run)
    promotion.update_project(project, staging)
    _dvc_repro(project, RERUN, b"re-run weights")  # later, by hand: judged by nothing
    return project


def _names(project: Path, fetched: BundleDir | None = None) -> tuple[dict, dict]:
    """({metrics: the model they belong to}, {bundle id: the model it belongs to})."""
    accepted = ProjectLayout(project).runs.accepted(CATEGORY)
    metrics = {repr(PROMOTED): "the promoted run", repr(RERUN): "the re-run", repr(OTHER_HOST): "prod"}
    bundles = {bundle_id(accepted.bundle.root): "the promoted run"}
    bundles[bundle_id(ProjectLayout(project).bundle.root)] = "the re-run"
    if fetched is not None:
        bundles[bundle_id(fetched.root)] = "prod"
    return metrics, bundles


def _answers(project: Path, registry_clone: Path | None, fetched: BundleDir | None = None) -> dict:
    """What each of the four places says serves fabric."""
    metrics, bundles = _names(project, fetched)
    [cat] = [c for c in data.find_categories(project) if c.name == CATEGORY]
    model = live.live_model(project, cat)
    if registry_clone is None:
        served, _ = check.served_bundle(project, CATEGORY)
    else:
        served, _ = check.served_bundle(project, CATEGORY, registry_clone=registry_clone)
    answers = {
        "dashboard live model (metrics)": metrics[repr(model.metrics)],
        "dashboard category (metrics shown)": metrics[repr(read_metrics(ReportsDir(cat.reports).metrics))],
        "dashboard category (bundle)": bundles.get(cat.bundle and bundle_id(cat.bundle), "none"),
        "monitoring served_bundle": bundles.get(served and bundle_id(served), "none"),
    }
    if registry_clone is None:  # with a registry the retrain flow judges against prod itself
        answers["promotion baseline"] = metrics[repr(promotion.baseline_for(project, CATEGORY).metrics)]
    return answers


def test_the_four_places_name_the_promoted_run_not_a_later_dvc_repro(project: Path) -> None:
    answers = _answers(project, None)
    assert set(answers.values()) == {"the promoted run"}, answers


def test_the_promoted_run_serves_since_it_was_accepted(project: Path) -> None:
    accepted_at = read_json(ProjectLayout(project).runs.accepted(CATEGORY).run)["accepted_at"]
    [cat] = [c for c in data.find_categories(project) if c.name == CATEGORY]
    assert live.live_model(project, cat).time == accepted_at
    assert check.served_bundle(project, CATEGORY)[1] == accepted_at


@pytest.fixture
def registry_url(tmp_path: Path, project: Path) -> str:
    """A registry where another host promoted fabric after this one (``registry.publish``, as a
    retrain does), and this host's copy of prod's bundle (where ``diffad predict --category``
    fetches it)."""
    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True)
    other = tmp_path / "other-host"
    _dvc_repro(other, OTHER_HOST, b"other host's weights")
    info = write_accepted_info(other / "run.json", {"run_id": OTHER_HOST_RUN, "category": CATEGORY})
    layout = ProjectLayout(other)
    files = {"metrics.json": layout.reports.metrics, "run.json": info, "dvc.lock": layout.lock}
    version = registry.publish(str(bare), tmp_path / "publisher", CATEGORY, files, None, "promote")
    _publish_bundle(project / "models" / "registry" / version.tag / "bundle", b"other host's weights")
    return str(bare)


def test_with_a_registry_every_place_names_prod(project, registry_url, monkeypatch) -> None:
    monkeypatch.setenv(data.REGISTRY_ENV, registry_url)
    monkeypatch.setattr(data, "_registry_synced", {})
    clone = registry.sync(registry_url, registry.local_clone(project))
    [version] = registry.versions(clone, CATEGORY)
    fetched = BundleDir(project / "models" / "registry" / version.tag / "bundle")
    answers = _answers(project, clone, fetched)
    assert set(answers.values()) == {"prod"}, answers
    [cat] = [c for c in data.find_categories(project) if c.name == CATEGORY]
    accepted_at = read_json(clone / "runs" / CATEGORY / "accepted" / "run.json")["accepted_at"]
    since = check.served_bundle(project, CATEGORY, registry_clone=clone)[1]
    assert live.live_model(project, cat).time == since == accepted_at
    assert (clone / "runs" / CATEGORY / "accepted" / LOCK_FILE).is_file()


def test_a_host_that_ran_nothing_shows_prod_from_the_registry(tmp_path, registry_url, monkeypatch) -> None:
    server = tmp_path / "server"
    server.mkdir()
    monkeypatch.setattr(data, "_registry_synced", {})
    assert data.find_categories(server) == []
    monkeypatch.setenv(data.REGISTRY_ENV, registry_url)
    [cat] = data.find_categories(server)
    assert (cat.name, cat.source, cat.bundle) == (CATEGORY, "registry", None)  # its bundle: not fetched
    assert data.read_metrics(cat).loc["padim", "image_auroc"] == OTHER_HOST["padim"]["image_auroc"]
    assert live.live_model(server, cat).run_id == OTHER_HOST_RUN
