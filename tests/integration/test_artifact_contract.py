"""The artifact contract end to end: one tiny real pipeline run feeds every consumer.

What `dvc repro` wrote is read by DVC itself (`dvc metrics show/diff`, `dvc exp show`, `dvc plots
show`), by every dashboard page (Streamlit's AppTest) and by the Prefect retrain flow, whose gate
is made to fail with a planted train/test copy. Nothing here is written by hand except that copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from PIL import Image

from diffad.artifacts.layout import ProjectLayout
from diffad.artifacts.records import HEADLINE_KEYS, read_metrics, read_validation
from diffad.inference.serving import SERVED_METHOD
from tests.flows.conftest import prefect_server  # noqa: F401  (the fixture, and Prefect kept in a temp home)
from tests.integration.conftest import ROOT, TINY, copy_project, dvc

pytestmark = pytest.mark.slow

METHODS = set(
    yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]["methods"]
)  # what the run scores
APP = ROOT / "dashboard" / "app.py"
EXPERIMENT = "evaluate.max_overlays=4"


@pytest.fixture(scope="module")
def project(reproduced_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the reproduced tiny project with one `dvc exp run` on top (only evaluate reruns)."""
    copy = copy_project(reproduced_project, tmp_path_factory.mktemp("contract") / "project")
    dvc(copy, "exp", "run", "-S", EXPERIMENT)
    return copy


def _snapshot(project: Path) -> dict[str, str]:
    """sha256 of the served state: reports, models and dvc.lock."""
    roots = [project / "reports", project / "models", project / "dvc.lock"]
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*"))) if p.is_file()]
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# ---------------------------------------------------------------- DVC reads what the stages wrote


def test_dvc_metrics_and_experiments_read_every_method(project: Path) -> None:
    shown = dvc(project, "metrics", "show", "--json")
    assert "failed to load" not in shown.stdout + shown.stderr
    [workspace] = [rev["data"] for rev in json.loads(shown.stdout).values()]  # DVC 3.67 keys it ""
    assert set(workspace) == {f"metrics/{m}.json" for m in METHODS}
    full = read_metrics(ProjectLayout(project).reports.metrics)
    for method in METHODS:
        headline = workspace[f"metrics/{method}.json"]["data"]
        assert set(headline) <= set(HEADLINE_KEYS) | {"evaluation_resolution"}  # DVC drops nulls
        per_method = {k: v for k, v in headline.items() if k != "evaluation_resolution"}
        assert all(v == pytest.approx(full[method][k], abs=1e-6) for k, v in per_method.items())
        assert headline["evaluation_resolution"] == TINY["data"]["resolution"]
    dvc(project, "metrics", "diff")

    exps = json.loads(dvc(project, "exp", "show", "--json").stdout)
    [exp] = [r for e in exps for x in e.get("experiments") or [] for r in x["revs"]]
    assert {f"metrics/{m}.json" for m in METHODS} <= set(exp["data"]["metrics"])
    assert exp["data"]["params"]["params.yaml"]["data"]["evaluate"]["max_overlays"] == 4
    assert exp["name"] in dvc(project, "exp", "show").stdout


def test_a_fresh_clone_compares_its_committed_headline_metrics(project: Path, tmp_path: Path) -> None:
    """issue 23: on a fresh clone `dvc metrics diff` said "failed to load some metrics for 'HEAD'"
    and `dvc exp show`'s commit row was all `!`: the headline is committed to git (cache: false)."""
    work = copy_project(project, tmp_path / "work")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "metrics", "dvc.lock"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "headline"], cwd=work, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(work), str(clone)], check=True)
    diff = dvc(clone, "metrics", "diff", "--all", "--json")
    assert "failed" not in diff.stderr
    assert {f"metrics/{m}.json" for m in METHODS} <= set(json.loads(diff.stdout))
    [head] = [e for e in json.loads(dvc(clone, "exp", "show", "--json").stdout) if e["rev"] != "workspace"]
    assert not head.get("error") and {f"metrics/{m}.json" for m in METHODS} <= set(head["data"]["metrics"])


def test_dvc_metrics_show_is_one_row_per_method_in_a_120_column_terminal(project: Path) -> None:
    table = dvc(project, "metrics", "show", env={"COLUMNS": "120"})
    lines = table.stdout.splitlines()
    assert "failed" not in table.stderr and max(map(len, lines)) <= 120, table.stdout
    header, rows = lines[0].split(), {line.split()[0]: line for line in lines[1:]}
    assert {"image_auroc", "pixel_auroc", "aupro", "image_f1"} <= set(header)
    assert set(rows) == {f"metrics/{m}.json" for m in METHODS}


def test_dvc_plots_show_overlays_every_method_and_leaves_nothing_untracked(project: Path) -> None:
    plots = json.loads(dvc(project, "plots", "show", "--json").stdout)["data"]
    for curve in ("roc", "pr"):  # one plot per curve kind, one line (colour) per method
        [plot] = plots[f"reports/curves/{curve}.csv"]
        assert plot["content"]["encoding"]["color"]["field"] == "method"
        assert {v["method"] for v in plot["content"]["data"]["values"]} == set(METHODS)
    pro = {v["method"] for v in plots["reports/curves/pro.csv"][0]["content"]["data"]["values"]}
    assert pro == set(METHODS) - {"msma_gmm"}  # msma_gmm has no anomaly map
    [flow] = plots["reports/fit/msma_flow.csv"]  # the learning curves fit@<method> wrote
    epochs = [v["epoch"] for v in flow["content"]["data"]["values"] if v.get("rev") == "workspace"]
    assert {int(e) for e in epochs} == set(range(1, TINY["msma_flow"]["epochs"] + 1))
    assert plots["reports/fit/msma_features.csv"][0]["content"]["data"]["values"]
    dvc(project, "plots", "show")  # writes dvc_plots/index.html
    assert (project / "dvc_plots" / "index.html").is_file()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True)
    assert "dvc_plots" not in status.stdout, status.stdout


def test_overlays_are_drawn_at_the_source_resolution(project: Path) -> None:
    overlays = sorted((project / "reports/heatmaps/ddim").rglob("*.png"))
    assert overlays
    with Image.open(overlays[0]) as image:  # the demo draws 128 px images, prepared at 64 px
        assert image.size == (128, 128)


# ---------------------------------------------------------------- every dashboard page on them


def _open(monkeypatch: pytest.MonkeyPatch, root: Path, page: str):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("DIFFAD_ROOT", str(root))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def test_overview_shows_every_method_the_live_model_and_the_experiment(project: Path, monkeypatch) -> None:
    at = _open(monkeypatch, project, "pages/overview.py")
    table = at.table[0].value
    assert set(table["method"]) == METHODS
    metrics = read_metrics(ProjectLayout(project).reports.metrics)
    row = table.set_index("method").loc["padim"]
    assert row["image AUROC"] == pytest.approx(metrics["padim"]["image_auroc"], abs=1e-3)
    assert any("workspace" in m and "dvc repro" in m for m in _texts(at, "markdown"))  # live model
    history = at.dataframe[-1].value
    assert "workspace" in history["run"].tolist() and len(history) >= 2  # + the experiment
    assert "evaluate.max_overlays=4" in history["params changed"].tolist()
    notes = " ".join(_texts(at, "caption"))
    assert "pixel metrics skipped" not in notes or "msma_gmm:" in notes


def test_curves_heatmaps_and_inspect_show_real_content(project: Path, monkeypatch) -> None:
    at = _open(monkeypatch, project, "pages/curves.py")
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    at = _open(monkeypatch, project, "pages/heatmaps.py")
    assert at.selectbox[0].value == SERVED_METHOD  # the method `diffad predict` serves by default
    assert at.image and len(at.image) >= 4
    assert any("unlabelled" in c for c in _texts(at, "caption"))
    at = _open(monkeypatch, project, "pages/inspect_image.py")
    image = next((project / "data/prepared/images/test").rglob("*.png"))
    at.file_uploader[0].upload(image.name, image.read_bytes(), "image/png")
    at.selectbox[0].select("padim")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label for m in at.metric} >= {"Anomaly score", "Decision"}
    assert not any("before scoring" in w.value for w in at.warning)  # already at the bundle's size
    wide = io.BytesIO()
    Image.open(image).resize((150, 90)).save(wide, format="PNG")
    at.file_uploader[0].upload("wide.png", wide.getvalue(), "image/png")
    at.run()
    assert any("150x90 is cropped to its centre 90x90" in w.value for w in at.warning), at.warning


def test_data_quality_lists_every_check_of_the_real_report(project: Path, monkeypatch) -> None:
    report = read_validation(ProjectLayout(project).validation)
    at = _open(monkeypatch, project, "pages/data_quality.py")
    assert _texts(at, "success")[0].startswith(f"All {len(report.checks)} checks passed")
    assert set(at.dataframe[0].value["check"]) == {c.name for c in report.checks}


# ---------------------------------------------------------------- a failing gate through Prefect


def _mvtec_copy_with_a_leak(project: Path) -> str:
    """The prepared demo images as an MVTec-layout raw folder, plus one train image copied into
    test/good (train/test leakage); returns its path relative to the project."""
    prepared, raw = project / "data/prepared", project / "data/raw/leaky"
    for image in (prepared / "images").rglob("*.png"):
        rel = image.relative_to(prepared / "images")
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(image, raw / rel)
    for mask in (prepared / "masks/test").rglob("*.png"):
        target = raw / "ground_truth" / mask.parent.name / f"{mask.stem}_mask.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(mask, target)
    shutil.copy2(next((raw / "train/good").glob("*.png")), raw / "test/good/leak.png")
    return "data/raw/leaky"


def test_failing_gate_is_named_in_run_record_and_dashboard_and_keeps_the_model(
    project: Path,
    prefect_server,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    from flows.retrain import retrain

    raw = _mvtec_copy_with_a_leak(project)
    before = _snapshot(project)
    state = retrain(
        project_dir=str(project),
        category="fabric",
        source="mvtec",
        data_path=raw,
        work_dir=str(tmp_path / "work"),
        retries=0,
        return_state=True,
    )
    assert state.is_failed()
    assert _snapshot(project) == before  # the served model and reports are byte-identical

    [path] = sorted((project / "runs/history").glob("*.json"))
    record = json.loads(path.read_text())
    assert record["outcome"] == "rejected" and record["metrics"] is None
    assert "train_test_leak" in record["reason"] and "images/test/good/leak.png" in record["reason"]
    leak = next(c for c in record["validation"]["checks"] if c["name"] == "train_test_leak")
    assert leak["offending_files"] == ["images/test/good/leak.png"]
    assert (project / record["validation_report"]).is_file()

    at = _open(monkeypatch, project, "pages/data_quality.py")
    assert any("rejected" in e and record["run_id"] in e for e in _texts(at, "error"))
    choice = next(o for o in at.selectbox[0].options if record["run_id"] in o)
    at.selectbox[0].select(choice).run()
    assert any("train_test_leak" in e for e in _texts(at, "error"))
    assert any("images/test/good/leak.png" in c.value for c in at.code)
    at = _open(monkeypatch, project, "pages/runs.py")
    runs = at.dataframe[0].value
    assert runs["run"].tolist() == [record["run_id"]] and "train_test_leak" in runs["failed checks"][0]
    at = _open(monkeypatch, project, "pages/overview.py")
    assert any(record["run_id"] in w and "rejected" in w for w in _texts(at, "warning"))
