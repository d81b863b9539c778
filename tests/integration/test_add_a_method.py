"""A method is one folder: a toy method written into ``src/diffad/methods/toy_mean/`` of a copy of
the reproduced tiny project is fitted by its own ``fit@toy_mean`` stage, measured by `evaluate`
(metrics.json), shipped in the bundle, served by ``diffad predict`` and listed by the dashboard,
with no edit to any other file of the code; what else it takes is one line under
``evaluate.methods`` in params.yaml and one ``fit`` foreach line in dvc.yaml."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from diffad.artifacts.layout import BundleDir
from diffad.artifacts.records import read_metrics
from tests.integration.conftest import copy_project, dvc, project_env

pytestmark = pytest.mark.slow

TOY = '''"""``toy_mean``: per-pixel distance to the mean good training image (a test's toy method)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffad.components.detector import Batch, ImageDetector, MethodOutput

from diffad.components.methods import register
from diffad.core.files import atomic_write


@register
class ToyMean(ImageDetector):
    name = "toy_mean"
    model_files = ("toy_mean.npy",)

    def __init__(self, mean: np.ndarray) -> None:
        self.mean = mean  # (3, H, W)

    @classmethod
    def fit(cls, images, models, seed: int) -> ToyMean:
        return cls(images.mean(0).numpy())

    @classmethod
    def load(cls, models) -> ToyMean:
        return cls(np.load(models.file("toy_mean.npy"), allow_pickle=False))

    def save(self, folder: Path) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, self.mean)

        atomic_write(Path(folder) / "toy_mean.npy", write)

    def score(self, batch: Batch) -> MethodOutput:
        maps = np.abs(batch.images.numpy() - self.mean).mean(axis=1).astype(np.float32)
        return MethodOutput(maps.reshape(len(maps), -1).max(axis=1).astype(np.float64), maps)
'''

DASHBOARD = """
import json, sys
from streamlit.testing.v1 import AppTest
from dashboard.data import METHOD_ORDER
at = AppTest.from_file(sys.argv[1], default_timeout=120)
at.run()
overview = sorted(set(at.table[0].value["method"]))
at.switch_page("pages/inspect_image.py").run()
inspect = list(at.selectbox[0].options)
print(json.dumps({"order": list(METHOD_ORDER), "overview": overview, "inspect": inspect}))
"""


# The tests that check a list of methods against the method folders (each would fail on a new
# method that is not wired in); they run in the copy, on its code.
METHOD_LIST_CHECKS = (
    "tests/unit/components/test_registry.py",
    "tests/unit/test_dvc_graph.py",
    "tests/unit/test_dvc_plots.py",
    "tests/unit/test_import_layers.py",
)


def test_a_new_method_is_one_new_folder(reproduced_project: Path, tmp_path: Path) -> None:
    project = copy_project(reproduced_project, tmp_path / "project")
    (project / "src/diffad/methods/toy_mean").mkdir()
    (project / "src/diffad/methods/toy_mean/detector.py").write_text(TOY)
    params = (project / "params.yaml").read_text()
    assert "  - padim\n" in params or "padim]" in params
    params = yaml.safe_load(params)
    params["evaluate"]["methods"].append("toy_mean")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env(project)

    checks = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *METHOD_LIST_CHECKS]
    unwired = subprocess.run(checks, cwd=project, env={**os.environ, **env}, text=True, capture_output=True)
    assert (
        unwired.returncode != 0
        and "test_each_method_with_something_to_fit_has_its_fit_stage" in unwired.stdout
    )

    dvc_yaml = (project / "dvc.yaml").read_text()
    line = "      padim: {inputs: data/prepared, shared: backbone, own: padim}\n"
    assert line in dvc_yaml  # the toy has no settings of its own: its `own` section is the shared one
    toy = "      toy_mean: {inputs: data/prepared, shared: backbone, own: backbone}\n"
    (project / "dvc.yaml").write_text(dvc_yaml.replace(line, line + toy))
    wired = subprocess.run(checks, cwd=project, env={**os.environ, **env}, text=True, capture_output=True)
    assert wired.returncode == 0, wired.stdout[-3000:]

    repro = dvc(project, "repro", env=env)
    ran = set(re.findall(r"Running stage '([^']+)'", repro.stdout))
    assert ran == {"fit@toy_mean", "evaluate"}, ran  # only the stages a new method can affect
    metrics = read_metrics(project / "reports/metrics.json")  # methods only, not the resolution
    assert list(metrics)[-1] == "toy_mean" and 0.0 <= metrics["toy_mean"]["image_auroc"] <= 1.0
    assert metrics["toy_mean"]["pixel_auroc"] is not None
    bundle = project / "models/bundle"
    assert "toy_mean" in json.loads(BundleDir(bundle).manifest.read_text())["methods"]
    assert BundleDir(bundle).model_file("toy_mean.npy").is_file()

    images = sorted((project / "data/prepared/images/test").rglob("*.png"))[:3]
    predict = subprocess.run(
        [sys.executable, "-m", "diffad.cli", "predict", *map(str, images), "--bundle", str(bundle),
         "--method", "toy_mean", "--out", str(tmp_path / "predictions"), "--threads", "1"],
        cwd=project, env={**os.environ, **env}, text=True, capture_output=True, timeout=600,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr
    table = pd.read_csv(tmp_path / "predictions/predictions.csv")
    assert list(table["method"]) == ["toy_mean"] * 3 and table["heatmap"].notna().all()

    shown = subprocess.run(
        [sys.executable, "-c", DASHBOARD, str(project / "dashboard/app.py")],
        cwd=project, env={**os.environ, **env, "DIFFAD_ROOT": str(project)}, text=True,
        capture_output=True, timeout=600,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lists = json.loads(shown.stdout.strip().splitlines()[-1])
    assert all("toy_mean" in names for names in lists.values()), lists
