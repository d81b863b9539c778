"""metrics.json states the resolution of its pixel metrics, and readers of the table are unaffected."""

from __future__ import annotations

import json

from diffad.artifacts.records import read_evaluation_resolution, read_metrics, write_metrics


def test_evaluation_resolution_is_one_top_level_number_beside_the_methods(tmp_path):
    path = tmp_path / "metrics.json"
    write_metrics(path, {"padim": {"image_auroc": 0.9, "pixel_auroc": 0.95}}, evaluation_resolution=256)
    assert json.loads(path.read_text())["evaluation_resolution"] == 256  # what `dvc metrics show` lists
    assert read_metrics(path) == {"padim": {"image_auroc": 0.9, "pixel_auroc": 0.95}}
    assert read_evaluation_resolution(path) == 256


def test_a_file_written_before_the_resolution_was_recorded_says_none(tmp_path):
    path = tmp_path / "metrics.json"
    write_metrics(path, {"padim": {"image_auroc": 0.9}})
    assert read_evaluation_resolution(path) is None
    assert read_metrics(path) == {"padim": {"image_auroc": 0.9}}
