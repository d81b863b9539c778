"""Every dashboard page under ``streamlit.testing.v1.AppTest``, on the fixture project and on an empty one."""

from __future__ import annotations

import io
import json
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import fake_predict
import numpy as np
import pandas as pd
import pytest
from fixtures import (
    BEST_IMAGE_AUROC,
    BEST_PIXEL_AUROC,
    CATEGORY,
    ENSEMBLE_FALSE_POSITIVES,
    ENSEMBLE_MISSES,
    ENSEMBLE_TOP,
    FAILED_CHECK,
    METHODS,
    N_GOOD,
    N_HOLE,
    OFFENDING,
    OTHER_CATEGORY,
    REJECTED_RUN,
    TEST,
    WASHER_IMAGE_AUROC,
)
from PIL import Image
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from dashboard import data

PAGES = [
    "pages/overview.py",
    "pages/curves.py",
    "pages/heatmaps.py",
    "pages/operating_point.py",
    "pages/inspect_image.py",
    "pages/data_quality.py",
    "pages/review.py",
    "pages/monitoring.py",
    "pages/runs.py",
]


def _texts(at, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def _no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _captions(at) -> list[str]:
    return [c for image in at.main.image for c in image.captions]  # the sidebar holds the colour scale


def _chart_frames(at) -> list[pd.DataFrame]:
    return [
        convert_arrow_bytes_to_pandas_df(d.data.data)
        for chart in at.get("vega_lite_chart")
        for d in chart.proto.datasets
    ]


@pytest.fixture
def fake_bundle(monkeypatch: pytest.MonkeyPatch):
    """Replace the (lazily imported) diffad.inference.predict with the fake of fake_predict.py."""

    def _install(predictor: type = fake_predict.Predictor) -> None:
        # setitem: the real module (or none) is back in sys.modules after the test, so later
        # tests (the end-to-end contract test) load the real bundle
        monkeypatch.setitem(
            sys.modules, "diffad.inference.predict", sys.modules.get("diffad.inference.predict")
        )
        fake_predict.install(predictor)
        predictor.loads.clear()

    return _install


# ---------------------------------------------------------------- every page


@pytest.mark.parametrize("page", PAGES[:-1])
def test_empty_project_says_run_dvc_repro(open_page, tmp_path: Path, page: str) -> None:
    at = open_page(tmp_path, page)
    _no_exception(at)
    assert any("dvc repro" in w for w in _texts(at, "warning")), _texts(at, "warning")


def test_operating_point_of_an_older_bundle_says_rebuild(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/operating_point.py")  # its bundle.json predates operating points
    _no_exception(at)
    assert any("dvc repro" in e and "operating point" in e for e in _texts(at, "error")), _texts(at, "error")


def test_runs_page_on_empty_project_says_how_to_start_prefect(open_page, tmp_path: Path) -> None:
    at = open_page(tmp_path, "pages/runs.py")
    _no_exception(at)
    assert any("prefect server start" in i for i in _texts(at, "info"))


def test_corrupt_metrics_give_a_message_not_a_traceback(
    open_page, fixture_root: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    (root / "reports/metrics.json").write_text("[1, 2")
    at = open_page(root, "pages/overview.py")  # fabric is broken, washer is fine
    _no_exception(at)
    assert any("reports/metrics.json" in w and "not valid JSON" in w for w in _texts(at, "warning"))
    assert set(at.table[0].value["category"]) == {OTHER_CATEGORY}
    shutil.rmtree(root / "runs" / OTHER_CATEGORY)
    at = open_page(root, "pages/overview.py")  # nothing left to show
    _no_exception(at)
    assert any("reports/metrics.json" in w and "not valid JSON" in w for w in _texts(at, "warning"))
    assert not at.table


# ---------------------------------------------------------------- overview


def test_overview_table_has_every_category_and_the_best_values(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root)
    _no_exception(at)
    table = at.table[0].value.set_index(["category", "method"])
    assert set(table.index) == {(CATEGORY, m) for m in METHODS} | {
        (OTHER_CATEGORY, m) for m in WASHER_IMAGE_AUROC
    }
    assert table.loc[(CATEGORY, BEST_IMAGE_AUROC[0]), "image AUROC"] == pytest.approx(BEST_IMAGE_AUROC[1])
    headline = {m.label: m.value for m in at.metric}
    assert headline["best image AUROC"] == f"{BEST_IMAGE_AUROC[1]:.3f}"
    assert headline["best pixel AUROC"] == f"{BEST_PIXEL_AUROC[1]:.3f}"
    assert BEST_IMAGE_AUROC[0] in " ".join(_texts(at, "caption")) and BEST_PIXEL_AUROC[0] in " ".join(
        _texts(at, "caption")
    )


def test_overview_says_which_method_predict_serves(open_page, fixture_root: Path) -> None:
    from diffad.inference.serving import served_method

    at = open_page(fixture_root)
    served = served_method(sorted(METHODS, key=data.method_rank))
    assert any(f"`diffad predict` serves **{served}**" in m for m in _texts(at, "markdown"))


def test_overview_history_shows_the_delta_to_the_previous_run(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root)
    ensemble = next(m for m in at.metric if m.label == "ensemble")
    assert ensemble.value == "0.987" and ensemble.proto.delta == "+0.037"
    assert any("could not be read" in c for c in _texts(at, "caption"))  # runs/history/broken.json
    history = at.dataframe[-1].value
    assert history["run"].tolist() == ["run-early", "run-late", REJECTED_RUN]  # every outcome listed
    assert history["Δ ensemble"].tolist() == ["–", "+0.037", "–"]  # no earlier run: a dash, never None
    assert history["outcome"].tolist()[-1] == "rejected"


def test_overview_follows_the_category_picker(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root)
    at.sidebar.selectbox[0].select(OTHER_CATEGORY).run()
    _no_exception(at)
    headline = {m.label: m.value for m in at.metric}
    best = max(WASHER_IMAGE_AUROC, key=WASHER_IMAGE_AUROC.get)
    assert headline["best image AUROC"] == f"{WASHER_IMAGE_AUROC[best]:.3f}"
    assert not any(m.label == "ensemble" for m in at.metric)  # fabric's history is not washer's
    assert any("No past runs" in i for i in _texts(at, "info"))


# ---------------------------------------------------------------- curves


def test_curves_overlay_every_method_and_follow_the_selection(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/curves.py")
    _no_exception(at)
    assert len(at.get("vega_lite_chart")) == 3  # ROC, PR, PRO
    roc = next(f for f in _chart_frames(at) if "legend" in f and len(f["method"].unique()) == len(METHODS))
    assert f"{BEST_IMAGE_AUROC[0]} (image AUROC {BEST_IMAGE_AUROC[1]:.3f})" in set(roc["legend"])
    at.multiselect[0].set_value(["ddim", "padim"]).run()
    shown = {m for f in _chart_frames(at) if "method" in f for m in f["method"]}
    assert shown == {"ddim", "padim"}


def test_curves_without_pro_say_why(open_page, fixture_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    (root / "reports/curves/pro.csv").unlink()
    at = open_page(root, "pages/curves.py")
    _no_exception(at)
    assert len(at.get("vega_lite_chart")) == 2
    assert any("masks" in i for i in _texts(at, "info"))


# ---------------------------------------------------------------- heatmaps


def test_heatmaps_show_every_test_image_sorted_by_score(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/heatmaps.py")
    _no_exception(at)
    assert [s.label for s in at.slider] == ["Heatmap opacity"] and not at.slider[0].disabled
    # the served method (fused) is not in this fixture: the first method with a map is preselected
    assert at.selectbox[0].value == "msma_flow" and len(at.toggle) == 1
    at.selectbox[0].select("ensemble").run()
    captions = _captions(at)
    assert len(captions) == len(TEST)
    assert captions[0].startswith(ENSEMBLE_TOP)
    assert sum("false positive" in c for c in captions) == 1 and sum("miss" in c for c in captions) == 1


def test_heatmap_filters_change_the_images_shown(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/heatmaps.py")
    at.selectbox[0].select("ensemble").run()
    label, defect = at.pills[0], at.pills[1]
    assert defect.options == sorted({d for d, _, _ in TEST})  # every defect type visible as a pill
    defect.set_value(["hole"]).run()
    assert len(at.main.image) == N_HOLE
    defect.set_value(sorted({d for d, _, _ in TEST})).run()
    label.set_value(["good"]).run()
    assert len(at.main.image) == N_GOOD
    label.set_value(["good", "anomaly", "unknown"]).run()
    at.toggle[0].set_value(True).run()
    names = sorted(c.split(" · ")[0] for c in _captions(at))
    assert names == sorted(ENSEMBLE_FALSE_POSITIVES + ENSEMBLE_MISSES)
    at.pills[1].set_value([]).run()
    assert len(at.main.image) == 0 and any("No image matches" in i for i in _texts(at, "info"))


def test_heatmap_opacity_changes_the_images(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/heatmaps.py")
    before = [i.value for i in at.main.image]
    at.slider[0].set_value(0.9).run()
    after = [i.value for i in at.main.image]
    assert len(before) == len(after) == len(TEST) and before != after


def test_heatmaps_of_a_score_only_method_show_images_and_say_so(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/heatmaps.py")
    at.selectbox[0].select("msma_gmm").run()
    _no_exception(at)
    assert len(at.main.image) == len(TEST)
    assert any("image score only" in i for i in _texts(at, "info"))
    assert at.slider[0].disabled


# ---------------------------------------------------------------- inspect


def _image_bytes(value: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 48, 3), value, np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def test_inspect_scores_an_upload(open_page, fixture_root: Path, fake_bundle) -> None:
    fake_bundle()
    at = open_page(fixture_root, "pages/inspect_image.py")
    _no_exception(at)
    assert at.selectbox[0].options == fake_predict.METHODS and at.selectbox[0].value == "ensemble"
    uploader = at.file_uploader[0]
    assert set(uploader.allowed_type) == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
    assert uploader.proto.max_upload_size_mb == 20
    at.file_uploader[0].upload("dark.png", _image_bytes(0), "image/png")
    at.run()
    _no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Decision"] == "anomalous"
    assert metrics["Percentile among calibration images"] == "100.0 %"
    assert metrics["Anomaly score"] == f"{100 / fake_predict.THRESHOLD:.0f}"
    assert len(at.image) == 2 and len(at.get("vega_lite_chart")) == 1  # upload + heatmap, histogram
    assert fake_predict.Predictor.loads == [str(fixture_root / "models" / "bundle")]
    # the black image scores 1.0, far above the good scores (0.1-0.3): the x axis must reach it
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    domains = [layer["encoding"]["x"]["scale"]["domain"] for layer in spec["layer"]]
    assert all(lo <= 0.1 and 1.0 <= hi <= 1.2 for lo, hi in domains), domains

    at.file_uploader[0].clear().upload("white.jpg", _image_bytes(255, "JPEG"), "image/jpeg")
    at.selectbox[0].select("msma_gmm")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Decision"] == "normal" and metrics["Percentile among calibration images"] == "0.0 %"
    assert any("image score only" in i for i in _texts(at, "info"))
    assert len(fake_predict.Predictor.loads) == 1  # the bundle is loaded once (cache_resource)


def test_inspect_unreadable_upload_gets_a_clear_message(open_page, fixture_root: Path, fake_bundle) -> None:
    fake_bundle()
    at = open_page(fixture_root, "pages/inspect_image.py")
    at.file_uploader[0].upload("broken.png", b"definitely not a png", "image/png")
    at.run()
    _no_exception(at)
    assert any("broken.png" in e and "could not be read" in e for e in _texts(at, "error"))
    assert not at.metric


def test_inspect_broken_bundle_gets_a_clear_message(open_page, fixture_root: Path, fake_bundle) -> None:
    fake_bundle(fake_predict.BrokenPredictor)
    at = open_page(fixture_root, "pages/inspect_image.py")
    _no_exception(at)
    assert any("could not be loaded" in e and "bundle format 0" in e for e in _texts(at, "error"))
    assert not at.file_uploader


# ---------------------------------------------------------------- data quality and runs


def test_data_quality_lists_every_check_and_the_offending_file(open_page, fixture_root: Path) -> None:
    at = open_page(fixture_root, "pages/data_quality.py")
    _no_exception(at)
    # the latest retrain was rejected at the gate: said first
    assert any(REJECTED_RUN in e and "rejected" in e for e in _texts(at, "error"))
    assert any("2 of" in e and FAILED_CHECK in e for e in _texts(at, "error"))
    results = at.dataframe[0].value
    assert results["check"].tolist()[:2] == [FAILED_CHECK, "repeated_sha256"]
    assert {"columns", "unique_path", "width", "train_images", "mask_for_defects"} <= set(results["check"])
    assert results["result"].tolist()[:3] == ["✗ failed", "✗ failed", "✓ passed"]
    assert at.expander[0].label.startswith(f"✗ {FAILED_CHECK}")
    assert all(path in at.code[0].value for path in OFFENDING)
    # the rejected run's own report (kept beside its record) is one of the choices
    assert any(REJECTED_RUN in option for option in at.selectbox[0].options)
    # ... and the workspace's prepared-dataset counts are not shown as if they were that run's
    assert "Prepared dataset" not in [h.value for h in at.subheader]
    workspace = next(o for o in at.selectbox[0].options if REJECTED_RUN not in o)
    at.selectbox[0].select(workspace).run()
    assert "Prepared dataset" in [h.value for h in at.subheader]


def test_data_quality_all_passed(open_page, fixture_root: Path, tmp_path: Path) -> None:
    from diffad.artifacts.records import read_validation, validation_from_dict, write_validation

    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    shutil.rmtree(root / "runs")
    folder = data.ProjectLayout(root).validation
    report = read_validation(folder).to_dict()
    report = {**report, "success": True, "checks": [c for c in report["checks"] if c["success"]]}
    write_validation(folder, validation_from_dict(report))
    at = open_page(root, "pages/data_quality.py")
    n = len(report["checks"])
    assert (
        _texts(at, "success") == [f"All {n} checks passed ({report['rows']} manifest rows)."] and not at.error
    )


def _serve(answer: bytes, status: int = 200) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def test_runs_page_lists_prefect_flow_runs(
    open_page, fixture_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [
        {
            "id": "1",
            "name": "brave-otter",
            "flow_id": "f",
            "state_name": "Completed",
            "start_time": "2026-11-23T10:00:00Z",
            "total_run_time": 12.0,
        },
        {"id": "2", "name": "quiet-lynx", "flow_id": "f", "state_name": "Failed"},
    ]
    server = _serve(json.dumps(runs).encode())
    try:
        monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{server.server_address[1]}/api")
        at = open_page(fixture_root, "pages/runs.py")
    finally:
        server.shutdown()
        server.server_close()
    _no_exception(at)
    table = at.dataframe[0].value
    assert table["run"].tolist() == ["brave-otter", "quiet-lynx"] and table["state"].tolist() == [
        "Completed",
        "Failed",
    ]
    records = at.dataframe[1].value
    assert records["run"].tolist() == [REJECTED_RUN, "run-late", "run-early"]  # newest first
    assert FAILED_CHECK in records["failed checks"].tolist()[0]


def test_runs_page_with_unreachable_prefect_says_how_to_start_it(
    open_page, fixture_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _serve(b"{}")
    port = server.server_address[1]
    server.shutdown()
    server.server_close()  # nothing listens on this port any more
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    at = open_page(fixture_root, "pages/runs.py")
    _no_exception(at)
    assert any("not reachable" in w and "prefect server start" in w for w in _texts(at, "warning"))
