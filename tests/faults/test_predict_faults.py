"""`diffad predict`: outputs never lost or written through links, streaming, warnings (issue 11, 4 + 5).

The bundle's models are replaced by a stub scorer (mean pixel, map = mean over channels): these
tests are about files and memory, not scores; the real bundle is used in tests/integration.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
import torch

from diffad.components.detector import MethodOutput
from diffad.core.errors import DiffadError
from diffad.evaluation.settings import EvaluateSettings
from diffad.evaluation.thresholds import fit_thresholds
from diffad.inference import predict

RESOLUTION = 8


class StubModels:
    def __init__(self, events: list) -> None:
        self.events = events

    def score(self, x: torch.Tensor, methods):
        self.events.append(("score", len(x)))
        return {m: MethodOutput(x.mean((1, 2, 3)).numpy(), x.mean(1).numpy()) for m in methods}


@pytest.fixture
def predictor():
    rng = np.random.default_rng(0)
    reference = MethodOutput(rng.normal(0, 0.1, 20), rng.random((20, RESOLUTION, RESOLUTION), np.float32))
    thresholds = {"stub": fit_thresholds(reference, EvaluateSettings())}
    meta = {"methods": ["stub"], "resolution": RESOLUTION, "transform": "center-crop-dhariwal"}
    events: list = []
    p = predict.Predictor(StubModels(events), meta, thresholds)
    p.events = events
    return p


def images(raw, tmp_path, names, size=(RESOLUTION, RESOLUTION)):
    return [raw.save(raw.noise(i, size), tmp_path / "in" / name) for i, name in enumerate(names)]


def run(predictor, files, out, **kwargs):
    return predict.predict_files(predictor, files, "stub", out, **kwargs)


def test_same_file_names_in_two_folders_get_two_heatmaps_mirroring_the_tree(predictor, raw, tmp_path):
    files = images(raw, tmp_path, ["a/000.png", "b/000.png", "b/000.jpg"])
    table = run(predictor, files, tmp_path / "out")
    heatmaps = list(table["heatmap"])
    assert len(set(heatmaps)) == 3 and all(os.path.isfile(h) for h in heatmaps)
    expected = ["a/000.png", "b/000_png.png", "b/000_jpg.png"]  # a suffix only where stems clash
    assert heatmaps == [str(tmp_path / "out/heatmaps" / name) for name in expected]


def test_a_non_empty_output_folder_is_refused_without_force(predictor, raw, tmp_path):
    files = images(raw, tmp_path, ["x.png"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(DiffadError, match="not empty.*--force"):
        run(predictor, files, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_summary_line_counts_the_skipped_inputs(predictor, raw, tmp_path):
    files = images(raw, tmp_path, ["a/000.png", "b/000.png"])
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    table = run(predictor, [*files, broken], out)
    line = predict.summary_line(table, out)
    assert f"of {len(files)} anomalous; 1 skipped" in line and str(out / "skipped.csv") in line
    clean = tmp_path / "clean"
    assert "skipped" not in predict.summary_line(run(predictor, files, clean), clean)


def test_force_clears_only_what_the_previous_run_wrote(predictor, raw, tmp_path):
    files = images(raw, tmp_path, ["a/000.png", "b/000.png"])
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    run(predictor, [*files, broken], out)
    assert (out / "skipped.csv").is_file()
    (out / "notes.txt").write_text("mine\n")
    (out / "heatmaps" / "mine.png").write_bytes(b"user file")

    table = run(predictor, files[1:], out, force=True)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        ".diffad-predict.json",
        "heatmaps/000.png",
        "heatmaps/mine.png",
        "notes.txt",
        "predictions.csv",
    ]
    assert (out / "notes.txt").read_text() == "mine\n"
    assert len(table) == 1 and len(pd.read_csv(out / "predictions.csv")) == 1


def test_force_does_not_overwrite_a_users_file_with_a_planned_name(predictor, raw, tmp_path):
    files = images(raw, tmp_path, ["x.png"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("the user's own table\n")
    with pytest.raises(DiffadError, match="not written by `diffad predict`"):
        run(predictor, files, out, force=True)
    assert (out / "predictions.csv").read_text() == "the user's own table\n"


@pytest.mark.parametrize("link", ["heatmaps", "heatmaps/x.png", "predictions.csv"])
def test_nothing_is_written_through_a_symbolic_link(predictor, raw, tmp_path, link):
    files = images(raw, tmp_path, ["x.png"])
    out = tmp_path / "out"
    run(predictor, files, out)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(b"precious")
    (outside / "predictions.csv").write_bytes(b"precious")
    target = out / link
    if target.is_dir():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    elif target.exists():
        target.unlink()
    os.symlink(outside if link == "heatmaps" else outside / target.name, target)
    with pytest.raises(DiffadError, match="symbolic link"):
        run(predictor, files, out, force=True)
    assert sorted(p.name for p in outside.iterdir()) == ["predictions.csv", "x.png"]
    assert {p.read_bytes() for p in outside.iterdir()} == {b"precious"}


def test_inputs_stream_through_in_batches(predictor, raw, tmp_path, monkeypatch):
    files = images(raw, tmp_path, [f"{i:02d}.png" for i in range(7)])
    reader = predict.read_image

    def reading(path, *args):
        predictor.events.append(("read", 1))
        return reader(path, *args)

    monkeypatch.setattr(predict, "read_image", reading)
    run(predictor, files, tmp_path / "out", batch_size=3)
    held = peak = 0
    for kind, n in predictor.events:
        held = held + 1 if kind == "read" else held - n
        peak = max(peak, held)
    assert peak <= 3 and [n for kind, n in predictor.events if kind == "score"] == [3, 3, 1]


def test_a_cropped_or_scaled_input_gets_a_warning(predictor, raw, tmp_path, caplog):
    wide = images(raw, tmp_path, ["wide.png"], size=(4 * RESOLUTION, 2 * RESOLUTION))
    big = images(raw, tmp_path, ["big1.png", "big2.png"], size=(2 * RESOLUTION, 2 * RESOLUTION))
    exact = images(raw, tmp_path, ["exact.png"])
    with caplog.at_level(logging.WARNING, logger=predict.log.name):
        run(predictor, [*wide, *big, *exact], tmp_path / "out")
    text = caplog.text
    assert "wide.png: 32x16 is cropped to its centre 16x16" in text
    assert text.count("16x16 is scaled to 8x8") == 1  # once per input size, not per image
    assert "exact.png" not in text


def test_the_record_lists_only_the_files_the_run_wrote(predictor, raw, tmp_path):
    """issue 23: `.diffad-predict.json` listed skipped.csv (and the heatmaps of skipped inputs)
    under "written" although no such file existed."""
    files = images(raw, tmp_path, ["a.png"])
    out = tmp_path / "out"
    run(predictor, files, out)
    written = json.loads((out / ".diffad-predict.json").read_text())["written"]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(written) == [name for name in on_disk if name != ".diffad-predict.json"]
    assert "skipped.csv" not in written
