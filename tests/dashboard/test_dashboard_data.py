"""The dashboard's artifact loading and gallery logic, on the fixture project and hand-made files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures import (
    CATEGORY,
    ENSEMBLE_FALSE_POSITIVES,
    ENSEMBLE_MISSES,
    ENSEMBLE_NORM,
    FAILED_CHECK,
    METHODS,
    N_GOOD,
    N_HOLE,
    OFFENDING,
    OTHER_CATEGORY,
    SIDE,
    TEST,
)
from PIL import Image

from dashboard import data, gallery
from diffad.artifacts.layout import BundleDir
from diffad.artifacts.runs import write_bundle_manifest


def _fabric(root: Path) -> data.Category:
    return next(c for c in data.find_categories(root) if c.name == CATEGORY)


def _names(rows: pd.DataFrame) -> list[str]:
    return [f"{d}/{Path(p).stem}" for d, p in zip(rows["defect"], rows["path"], strict=True)]


def test_categories_main_reports_first_then_runs(fixture_root: Path) -> None:
    cats = data.find_categories(fixture_root)
    assert [c.name for c in cats] == [CATEGORY, OTHER_CATEGORY]
    fabric, washer = cats
    assert fabric.reports == fixture_root / "reports"
    assert (
        fabric.prepared == fixture_root / "data" / "prepared"
        and fabric.bundle == fixture_root / "models/bundle"
    )
    # the shared data/prepared and bundle belong to fabric (their JSON says so), not to washer
    assert washer.prepared is None and washer.bundle is None
    assert washer.source == "accepted" and washer.reports == fixture_root / "runs/washer/accepted/reports"


def test_categories_empty_root(tmp_path: Path) -> None:
    assert data.find_categories(tmp_path) == []


def test_metrics_frame_orders_methods_and_maps_nulls_to_nan() -> None:
    raw = {
        "padim": {"image_auroc": 0.8, "pixel_auroc": None},
        "zeta": {"image_auroc": 0.5},
        "ensemble": {"image_auroc": 0.9, "aupro": "n/a", "image_ap": True},
        "notes": "not a method",
    }
    frame = data.metrics_frame(raw)
    assert list(frame.index) == ["ensemble", "padim", "zeta"]  # known methods in pipeline order, others last
    assert frame.loc["ensemble", "image_auroc"] == 0.9
    assert frame[["pixel_auroc"]].isna().all().all()
    assert np.isnan(frame.loc["ensemble", "aupro"]) and np.isnan(frame.loc["ensemble", "image_ap"])


def test_best_mask_is_per_category_with_ties_and_lower_is_better_for_time() -> None:
    table = pd.DataFrame(
        {
            "category": ["a", "a", "a", "b", "b"],
            "method": ["x", "y", "z", "x", "y"],
            "image_auroc": [0.9, 0.95, 0.95, 0.7, np.nan],
            "ms_per_image": [5.0, 1.0, 3.0, 2.0, 9.0],
        }
    )
    mask = data.best_mask(table, ["image_auroc", "ms_per_image"])
    assert mask["image_auroc"].tolist() == [False, True, True, True, False]
    assert mask["ms_per_image"].tolist() == [False, True, False, True, False]
    assert not mask["method"].any()


def test_metrics_table_has_every_category_and_method(fixture_root: Path) -> None:
    table = data.metrics_table(data.find_categories(fixture_root))
    assert len(table) == len(METHODS) + 3
    assert table.set_index(["category", "method"]).loc[(OTHER_CATEGORY, "padim"), "image_auroc"] == 0.955


def test_per_defect_reads_the_contract_shape_and_names_the_method_in_notes(fixture_root: Path) -> None:
    frame, notes = data.read_per_defect(_fabric(fixture_root))
    assert sorted(set(frame["defect"])) == ["hole", "stain"]
    assert notes and all(n.split(":")[0] in METHODS for n in notes)


def test_missing_and_corrupt_files_name_the_path(tmp_path: Path) -> None:
    cat = data.Category("c", tmp_path, None, None)
    with pytest.raises(data.MissingArtifact) as missing:
        data.read_metrics(cat)
    assert missing.value.path == tmp_path / "metrics.json" and missing.value.reason == "not found"
    (tmp_path / "metrics.json").write_text("{oops")
    with pytest.raises(data.MissingArtifact, match="not valid JSON"):
        data.read_metrics(cat)
    (tmp_path / "scores.csv").write_text("path,label\na.png,good\n")
    with pytest.raises(data.MissingArtifact, match="lacks columns defect"):
        data.read_scores(cat)


def test_read_scores_keeps_test_rows_and_parses_decisions(tmp_path: Path) -> None:
    (tmp_path / "scores.csv").write_text(
        "path,split,label,defect,a_score,a_norm,a_anomalous,b_score,b_norm\n"
        "train.png,train,good,good,0.1,10,False,0.1,150\n"
        "x.png,test,good,good,0.2,20,False,0.2,99\n"
        "y.png,test,anomaly,hole,0.9,300,True,0.3,100\n"
    )
    scores = data.read_scores(data.Category("c", tmp_path, None, None))
    assert scores["path"].tolist() == ["x.png", "y.png"] and scores["pos"].tolist() == [0, 1]
    assert scores["a_anomalous"].tolist() == [False, True]
    assert scores["b_anomalous"].tolist() == [False, True]  # derived: norm >= 100
    assert data.score_methods(scores) == ["a", "b"]


def test_heat_maps_must_match_the_number_of_test_rows(fixture_root: Path) -> None:
    cat = _fabric(fixture_root)
    maps = data.heat_maps(cat, "ensemble", len(TEST))
    assert maps is not None and maps.shape == (len(TEST), SIDE, SIDE)
    assert data.heat_maps(cat, "ensemble", len(TEST) + 1) is None
    assert data.heat_maps(cat, "msma_gmm", len(TEST)) is None


def test_map_range_from_bundle_else_from_the_maps(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "heatmaps" / "m"
    folder.mkdir(parents=True)
    maps = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0), np.arange(16.0).reshape(4, 4)])
    np.save(folder / "maps.npy", maps.astype(np.float16))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    write_bundle_manifest(BundleDir(bundle), {"thresholds": {"m": {"map_vmin": 0.5, "map_vmax": 2.5}}})
    with_bundle = data.Category("c", tmp_path / "reports", None, bundle)
    assert data.map_range(with_bundle, "m", (0, 1)) == (0.5, 2.5)
    without = data.Category("c", tmp_path / "reports", None, None)
    vmin, vmax = data.map_range(without, "m", (0, 1))
    assert vmin == pytest.approx(2.0)  # median of the good rows' maps (1s and 3s)
    assert vmax == pytest.approx(np.quantile(maps, 0.995))


def test_validation_table_puts_failures_first(fixture_root: Path) -> None:
    table = data.validation_table(data.read_validation(_fabric(fixture_root).files.validation))
    # the planted copy fails the leak check and the repeated-sha256 check, nothing else
    assert table["success"].tolist()[:3] == [False, False, True] and table["success"].sum() == len(table) - 2
    assert table.loc[0, "check"] == FAILED_CHECK and table.loc[0, "offending"] == OFFENDING


# ---------------------------------------------------------------- gallery


def test_decisions_mark_false_positives_and_misses_never_unknown(fixture_root: Path) -> None:
    table = gallery.decisions(data.read_scores(_fabric(fixture_root)), "ensemble")
    assert _names(table[table["mistake"] == gallery.FALSE_POSITIVE]) == ENSEMBLE_FALSE_POSITIVES
    assert _names(table[table["mistake"] == gallery.MISS]) == ENSEMBLE_MISSES
    unknown = table[table["label"] == "unknown"]
    assert unknown["anomalous"].all() and (unknown["mistake"] == "").all()


def test_select_filters_and_sorts(fixture_root: Path) -> None:
    table = gallery.decisions(data.read_scores(_fabric(fixture_root)), "ensemble")
    assert len(gallery.select(table)) == len(TEST)
    assert len(gallery.select(table, defects=["hole"])) == N_HOLE
    assert len(gallery.select(table, labels=["good"])) == N_GOOD
    assert len(gallery.select(table, defects=[], labels=None)) == 0
    mistakes = gallery.select(table, only_mistakes=True)
    assert sorted(_names(mistakes)) == sorted(ENSEMBLE_FALSE_POSITIVES + ENSEMBLE_MISSES)
    assert gallery.select(table, sort=gallery.SORTS[0])["norm"].tolist() == sorted(
        ENSEMBLE_NORM, reverse=True
    )
    assert gallery.select(table, sort=gallery.SORTS[1])["norm"].tolist() == sorted(ENSEMBLE_NORM)
    assert gallery.select(table, sort=gallery.SORTS[2])["path"].is_monotonic_increasing


def test_tile_blends_raw_maps_with_the_chosen_opacity(fixture_root: Path) -> None:
    cat = _fabric(fixture_root)
    table = gallery.decisions(data.read_scores(cat), "ensemble")
    row = table[table["label"] == "good"].iloc[0]
    plain = np.asarray(
        Image.open(fixture_root / "data/prepared" / row["path"])
        .convert("RGB")
        .resize((gallery.DISPLAY_SIDE, gallery.DISPLAY_SIDE), Image.Resampling.BILINEAR)
    )
    none = gallery.tile(cat, "ensemble", row, n_test=len(TEST), alpha=0.0, value_range=(0.1, 0.9))
    full = gallery.tile(cat, "ensemble", row, n_test=len(TEST), alpha=1.0, value_range=(0.1, 0.9))
    assert none.shape == (gallery.DISPLAY_SIDE, gallery.DISPLAY_SIDE, 3)
    assert np.abs(none.astype(int) - plain).max() <= 1  # opacity 0: the image itself
    # opacity 1: only colormap colours; a good image's low heat is dark (inferno), unlike the grey texture
    assert full.mean() < none.mean() - 20


def test_tile_falls_back_to_saved_png_then_to_the_image(fixture_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(fixture_root, tmp_path / "copy"))
    (root / "reports/heatmaps/ddim/maps.npy").unlink()
    cat = _fabric(root)
    row = gallery.decisions(data.read_scores(cat), "ddim").iloc[4]
    assert gallery.tile(cat, "ddim", row, n_test=len(TEST), alpha=0.5, value_range=None) == (
        root / "reports/heatmaps/ddim" / row["defect"] / f"{Path(row['path']).stem}.png"
    )
    assert gallery.tile(cat, "msma_gmm", row, n_test=len(TEST), alpha=0.5, value_range=(0.0, 1.0)) == (
        root / "data/prepared" / row["path"]
    )
    (root / "data/prepared" / row["path"]).unlink()
    assert gallery.tile(cat, "msma_gmm", row, n_test=len(TEST), alpha=0.5, value_range=None) is None


def test_a_rate_at_the_threshold_is_never_marked_best_on_its_own() -> None:
    """issue 23: green "best" marked a 0 % false-alarm rate of methods that missed 33-42 % of the
    defects; either rate alone is one side of a trade-off, not a quality."""
    table = pd.DataFrame(
        {
            "category": ["a", "a"],
            "method": ["misses_a_lot", "balanced"],
            "image_false_alarm_rate": [0.0, 0.05],
            "image_miss_rate": [0.42, 0.10],
            "image_f1": [0.70, 0.92],
        }
    )
    mask = data.best_mask(table, ["image_false_alarm_rate", "image_miss_rate", "image_f1"])
    assert not mask["image_false_alarm_rate"].any() and not mask["image_miss_rate"].any()
    assert mask["image_f1"].tolist() == [False, True]


def test_every_method_has_its_own_colour_whatever_else_is_shown() -> None:
    """issue 23: the curves' default colours gave two blues, two greens and two pinks."""
    colours = [data.method_colour(m) for m in data.METHOD_ORDER]
    assert len(set(colours)) == len(colours) == len(data.METHOD_ORDER)
    assert data.method_colour("padim") == colours[data.METHOD_ORDER.index("padim")]
    assert data.method_colour("a_new_method") == data.method_colour("a_new_method")
