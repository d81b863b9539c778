"""Drift statistics on samples with a known answer; the scores log reader."""

from __future__ import annotations

import numpy as np
import pytest

from diffad.core.errors import DataError
from diffad.inference.scores_log import read_scores_log
from diffad.monitoring.drift import drift_statistics
from diffad.monitoring.settings import MonitoringSettings

CFG = MonitoringSettings()
rng = np.random.default_rng(0)
GOOD = rng.normal(0.0, 1.0, 200)
THRESHOLD = float(np.quantile(GOOD, 0.95))


def test_the_same_distribution_does_not_drift() -> None:
    report = drift_statistics(rng.normal(0.0, 1.0, 200), GOOD, THRESHOLD, CFG)
    assert report.enough and not report.drifted
    assert report.calibration_alarm_share == pytest.approx(0.05, abs=0.01)


def test_a_shifted_distribution_drifts_for_the_right_reasons() -> None:
    report = drift_statistics(rng.normal(2.0, 1.0, 200), GOOD, THRESHOLD, CFG)
    assert report.drifted and report.p_value < 1e-6
    assert report.median_shift == pytest.approx(2.0, abs=0.3) and report.alarm_share > 0.5
    assert any("median moved" in r for r in report.reasons)


def test_a_significant_but_tiny_shift_is_not_drift() -> None:
    """A big window makes KS reject a 0.1 std shift; the effect-size limits keep it quiet."""
    report = drift_statistics(rng.normal(0.15, 1.0, 20000), rng.normal(0.0, 1.0, 20000), 1.64, CFG)
    assert report.p_value < CFG.p_value and not report.drifted


def test_too_few_images_make_no_decision() -> None:
    report = drift_statistics(np.full(5, 9.0), GOOD, THRESHOLD, CFG)
    assert not report.enough and not report.drifted and "too few" in report.summary()


def test_a_broken_log_row_names_the_line(tmp_path) -> None:
    path = tmp_path / "scores.jsonl"
    path.write_text('{"schema_version": 1}\n')
    with pytest.raises(DataError, match=r"scores\.jsonl:1: lacks"):
        read_scores_log(path)
    assert read_scores_log(tmp_path / "absent.jsonl").empty


def test_a_jump_in_the_alarm_rate_drifts_though_the_bulk_of_scores_did_not_move() -> None:
    """A line where 12 of 52 images cross the threshold (calibration: 2 of 48) has changed, even if
    the other 40 look like calibration: too few images for KS to see it, plenty for the alarm share."""
    draw = np.random.default_rng(1)
    good = np.sort(draw.normal(0.0, 1.0, 48))
    threshold = float((good[-3] + good[-2]) / 2)  # 2 of the 48 calibration scores over it
    production = np.concatenate([good[:40], np.full(12, 4.0)])  # the bulk as calibration, 12 alarms
    report = drift_statistics(production, good, threshold, CFG)
    assert report.calibration_alarm_share == pytest.approx(2 / 48)
    assert report.alarm_share == pytest.approx(12 / 52)
    assert report.p_value > CFG.p_value  # the two-sample test alone would stay quiet
    assert report.drifted and any("share over threshold" in r for r in report.reasons)


def test_an_image_scored_twice_counts_once_in_the_window(tmp_path) -> None:
    """issue 23: Monitoring counted a re-scored image twice (the Review queue once). The log is
    written by the writer `diffad predict` uses."""
    import pandas as pd

    from diffad.inference.scores_log import log_predictions
    from diffad.monitoring.drift import recent_window

    images = [tmp_path / f"{i}.png" for i in range(3)]
    for i, image in enumerate(images):
        image.write_bytes(bytes([i]) * 10)
    log = tmp_path / "scores.jsonl"

    def table(paths, score):
        return pd.DataFrame(
            {"path": [str(p) for p in paths], "method": "padim", "score": score, "norm_score": 50.0,
             "anomalous": False, "percentile": 10.0, "heatmap": ""}
        )  # fmt: skip

    log_predictions(
        log,
        table(images, 1.0),
        category="c",
        bundle="b1b1b1b1b1b1b1b1",
        threshold=2.0,
        time="2026-01-01T00:00:00Z",
    )
    log_predictions(
        log,
        table(images[:1], 1.5),
        category="c",
        bundle="b1b1b1b1b1b1b1b1",
        threshold=2.0,
        time="2026-01-02T00:00:00Z",
    )
    window = recent_window(read_scores_log(log), "b1b1b1b1b1b1b1b1", "padim", 10)
    assert len(window) == 3
    assert window.set_index("image").loc[str(images[0].resolve()), "score"] == 1.5  # the latest
