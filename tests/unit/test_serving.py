"""Which model serves a category (diffad.inference.serving.served_model): the priority order, how
the workspace is named, where a promoted run's bundle is on this host, and since when it serves.

Files are written by the pipeline's writers (write_metrics, write_summary, write_accepted_info,
publish_version + write_bundle_manifest as write_bundle does, registry.publish); only dvc.lock and
params.yaml, which DVC and the user write, are spelt here."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from diffad import registry
from diffad.artifacts.layout import INFO_FILE, AcceptedDir, BundleDir, ProjectLayout
from diffad.artifacts.records import ReportSummary, read_json, write_json, write_metrics, write_summary
from diffad.artifacts.runs import write_accepted_info, write_bundle_manifest
from diffad.core.errors import ArtifactError
from diffad.core.files import publish_version
from diffad.inference.serving import ACCEPTED, REGISTRY, WORKSPACE, served_model, workspace_category

METRICS = {"padim": {"image_auroc": 0.9}}


def _bundle(folder: Path, category: str, weights: bytes = b"weights") -> BundleDir:
    def build(staging: Path) -> str:
        (staging / "padim.safetensors").write_bytes(weights)
        manifest = write_bundle_manifest(BundleDir(staging), {"category": category, "thresholds": {}})
        return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]

    publish_version(folder, build)
    return BundleDir(folder)


def _lock(path: Path, bundle_hash: str) -> None:
    outs = [{"path": "models/bundle", "md5": bundle_hash}]
    path.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"evaluate": {"outs": outs}}}))


def _workspace(project: Path, category: str = "fabric") -> ProjectLayout:
    layout = ProjectLayout(project)
    write_metrics(layout.reports.metrics, METRICS)
    write_summary(layout.reports, ReportSummary(category, True, ["padim"], 4, 0))
    _bundle(layout.bundle.root, category)
    return layout


def _accepted(project: Path, run_id: str = "r1", with_bundle: bool = True) -> AcceptedDir:
    accepted = ProjectLayout(project).runs.accepted("fabric")
    write_metrics(accepted.metrics, METRICS)
    write_accepted_info(accepted.run, {"run_id": run_id, "category": "fabric"})
    if with_bundle:
        _bundle(accepted.bundle.root, "fabric", b"accepted weights")
    return accepted


def _registry(tmp_path: Path, run_id: str) -> Path:
    """A registry with one prod version of fabric; returns this host's synced clone."""
    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True)
    files = {
        "metrics.json": write_metrics(tmp_path / "reg" / "metrics.json", METRICS),
        "run.json": write_accepted_info(tmp_path / "reg" / "run.json", {"run_id": run_id}),
    }
    registry.publish(str(bare), tmp_path / "publisher", "fabric", files, None, "promote")
    return registry.sync(str(bare), tmp_path / "clone")


def test_registry_before_accepted_before_workspace(tmp_path: Path) -> None:
    project = tmp_path / "project"
    layout = _workspace(project)
    served = served_model(project, "fabric")
    assert served.source == WORKSPACE and served.bundle == layout.bundle and served.run_id is None

    accepted = _accepted(project)
    served = served_model(project, "fabric")
    assert (served.source, served.run_id, served.metrics) == (ACCEPTED, "r1", accepted.metrics)
    assert served.bundle == accepted.bundle and served.outputs.root == accepted.root

    clone = _registry(tmp_path, "r2")
    served = served_model(project, "fabric", clone)
    assert (served.source, served.run_id, served.version) == (REGISTRY, "r2", "fabric@v1.0.0")
    assert served.bundle is None and served.outputs is None  # another host's run: not fetched here
    assert served_model(project, "washer", clone) is None  # nothing of it anywhere
    assert served_model(project, "Fabric", clone) is None  # not a registry name, and not served here


def test_prod_promoted_on_this_host_has_its_files_here(tmp_path: Path) -> None:
    project = tmp_path / "project"
    accepted = _accepted(project, run_id="r2")
    served = served_model(project, "fabric", _registry(tmp_path, "r2"))
    assert served.source == REGISTRY and served.bundle == accepted.bundle
    assert served.outputs.root == accepted.root


def test_prod_bundle_fetched_by_predict_is_the_served_bundle(tmp_path: Path) -> None:
    project = tmp_path / "project"
    clone = _registry(tmp_path, "r2")
    fetched = _bundle(project / "models" / "registry" / "fabric@v1.0.0" / "bundle", "fabric")
    assert served_model(project, "fabric", clone).bundle == fetched


def test_the_workspace_is_named_by_its_summary_then_bundle_then_prepared_data_then_params(
    tmp_path: Path,
) -> None:
    layout = ProjectLayout(tmp_path)
    assert workspace_category(tmp_path) is None
    layout.params.write_text(yaml.safe_dump({"data": {"category": "from-params"}}))
    assert workspace_category(tmp_path) == "from-params"
    write_json(layout.prepared / INFO_FILE, {"category": "from-info"})
    assert workspace_category(tmp_path) == "from-info"
    _bundle(layout.bundle.root, "from-bundle")
    assert workspace_category(tmp_path) == "from-bundle"
    write_summary(layout.reports, ReportSummary("from-summary", True, ["padim"], 4, 0))
    assert workspace_category(tmp_path) == "from-summary"


def test_the_workspace_serves_only_its_own_category_and_bundle(tmp_path: Path) -> None:
    layout = _workspace(tmp_path, "fabric")
    assert served_model(tmp_path, "washer") is None
    _bundle(layout.bundle.root, "washer")  # a bundle of another category: not fabric's model
    served = served_model(tmp_path, "fabric")
    assert served.source == WORKSPACE and served.bundle is None and served.metrics == layout.reports.metrics


def test_a_run_without_its_own_bundle_uses_the_projects_when_dvc_lock_records_the_same(
    tmp_path: Path,
) -> None:
    layout = _workspace(tmp_path)
    accepted = _accepted(tmp_path, with_bundle=False)
    _lock(accepted.root / "dvc.lock", "aaa.dir")
    _lock(layout.lock, "bbb.dir")  # the workspace holds another bundle
    assert served_model(tmp_path, "fabric").bundle is None
    _lock(layout.lock, "aaa.dir")  # the promotion's workspace update, or `cp dvc.lock && dvc pull`
    assert served_model(tmp_path, "fabric").bundle == layout.bundle


def test_since_when(tmp_path: Path) -> None:
    layout = _workspace(tmp_path)
    stamp = 1_780_000_000
    os.utime(layout.bundle.manifest, (stamp, stamp))
    assert served_model(tmp_path, "fabric").since == "2026-05-28T20:26:40+00:00"  # bundle written
    accepted = _accepted(tmp_path)
    assert served_model(tmp_path, "fabric").since == read_json(accepted.run)["accepted_at"]


def test_an_unreadable_run_json_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    _workspace(tmp_path)
    accepted = _accepted(tmp_path)
    accepted.run.write_text("{not json")
    with pytest.raises(ArtifactError, match="run.json"):
        served_model(tmp_path, "fabric")
