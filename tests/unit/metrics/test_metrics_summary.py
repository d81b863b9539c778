"""method_metrics and curves: keys, per-defect subsets, skipped pixel metrics, thinned curves."""

import numpy as np
import pytest

from diffad.metrics.summary import METRIC_KEYS, curves, method_metrics


def toy_set():
    """4 good, 2 'scratch' (well detected), 2 'dent' (scored like good images)."""
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    defects = ["good"] * 4 + ["scratch", "scratch", "dent", "dent"]
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.15, 0.35])
    masks = np.zeros((8, 8, 8), dtype=np.uint8)
    masks[4:, 2:5, 2:5] = 1
    maps = np.zeros((8, 8, 8), dtype=np.float32)
    maps[4:6, 2:5, 2:5] = 1.0  # scratch maps hit the defect exactly; dent maps are blank
    return labels, scores, masks, maps, defects


def test_overall_and_per_defect_values():
    labels, scores, masks, maps, defects = toy_set()
    out = method_metrics(labels, scores, masks, maps, defects, 0.5, pixel_threshold=0.5)
    assert set(out["overall"]) == set(METRIC_KEYS)
    assert sorted(out["per_defect"]) == ["dent", "scratch"]
    scratch, dent = out["per_defect"]["scratch"], out["per_defect"]["dent"]
    assert (
        scratch["image_auroc"] == 1.0
        and scratch["pixel_auroc"] == 1.0
        and scratch["aupro"] == pytest.approx(1.0)
    )
    assert scratch["image_f1"] == 1.0 and scratch["pixel_f1"] == 1.0
    # dent scores 0.15, 0.35 among good 0.1..0.4: 1 + 3 of 8 (anomaly, good) pairs won
    assert dent["image_auroc"] == pytest.approx(4 / 8)
    assert dent["pixel_auroc"] == pytest.approx(0.5)  # all-zero maps: one tie
    # overall: anomalies {0.9, 0.8, 0.15, 0.35} vs good {0.1..0.4}: wins 4+4+1+3 = 12 of 16
    assert out["overall"]["image_auroc"] == pytest.approx(12 / 16)
    assert out["overall"]["image_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))
    # at 0.5: no good image flagged, both dents missed; the oracle picks 0.8 on these very labels
    assert out["overall"]["image_false_alarm_rate"] == 0.0 and out["overall"]["image_miss_rate"] == 0.5
    assert out["overall"]["image_precision"] == 1.0 and dent["image_miss_rate"] == 1.0
    assert out["overall"]["image_f1_oracle"] >= out["overall"]["image_f1"]
    assert 0 < out["overall"]["aupro"] < 1
    assert out["notes"] == []


def test_without_masks_pixel_metrics_are_none_and_said_so():
    labels, scores, _, maps, defects = toy_set()
    out = method_metrics(labels, scores, None, maps, defects, None)
    for block in [out["overall"], *out["per_defect"].values()]:
        assert all(block[k] is None for k in ("pixel_auroc", "aupro", "pixel_f1", "pixel_threshold"))
        assert block["image_f1"] is None and block["image_auroc"] is not None
    assert any("no ground-truth masks" in note for note in out["notes"])


def test_defect_with_empty_masks_is_skipped_with_a_note():
    labels, scores, masks, maps, defects = toy_set()
    masks[6:] = 0  # dent masks lost
    out = method_metrics(labels, scores, masks, maps, defects, None)
    assert out["per_defect"]["dent"]["aupro"] is None
    assert out["per_defect"]["scratch"]["aupro"] is not None
    assert any(note.startswith("dent:") for note in out["notes"])


def test_inconsistent_inputs_raise():
    labels, scores, masks, maps, defects = toy_set()
    with pytest.raises(ValueError, match="defect names"):
        method_metrics(labels, scores, masks, maps, defects[:-1], None)
    with pytest.raises(ValueError, match="needs both good and anomalous"):
        method_metrics(np.zeros(8, int), scores, masks, maps, ["good"] * 8, None)


def test_curves_are_thinned_and_span_the_range():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    scores = rng.random(1000) + labels
    masks = np.zeros((4, 32, 32), dtype=bool)
    masks[1:, 8:20, 8:20] = True
    maps = rng.random(masks.shape) + masks
    out = curves(labels, scores, masks, maps, max_points=50)
    assert set(out) == {"roc", "pr", "pro"}
    for frame in out.values():
        assert list(frame.columns) == ["x", "y", "threshold"] and len(frame) <= 50
    assert out["roc"]["x"].iloc[0] == 0 and out["roc"]["x"].iloc[-1] == 1 and out["roc"]["y"].iloc[-1] == 1
    assert out["pro"]["x"].iloc[-1] == pytest.approx(0.3)
    assert "pro" not in curves(labels, scores, None, None)
