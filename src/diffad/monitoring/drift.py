"""Drift of production scores against the calibration scores the threshold was chosen on.

Notation: ``s`` the recent production scores of one bundle and method (the window), ``g`` the
bundle's calibration scores (good images no model was fitted on), ``t`` the raw threshold.

    alarm share        a   = mean(s >= t)        vs  a_0 = mean(g >= t)   (≈ the target rate)
                       one-sided Fisher exact test of the two counts: its p-value p_a
    two-sample test    KS(s, g): statistic D = sup |F_s - F_g|, its p-value p_KS
    median shift       m   = (median(s) - median(g)) / std(g)

A large window makes a test reject on shifts too small to matter, and a small one gives noisy
effects, so each kind of drift needs both its test and an effect that matters
(``MonitoringSettings``):

    more alarms        p_a  < p_value  and  a - a_0 > alarm_share_excess
    scores moved       p_KS < p_value  and  |m|     > median_shift

Each effect has its own test because KS looks at the whole distribution: a defect rate jumping
from 4 % to 23 % on otherwise unchanged images moves F_s by under 0.2, which 50 images cannot tell
from chance, while the alarm counts (12 of 52 against 2 of 48) can.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, ks_2samp

from diffad.monitoring.settings import MonitoringSettings


@dataclass(frozen=True)
class DriftReport:
    """The statistics of one window and the decision; JSON-safe through :meth:`to_dict`."""

    n: int  # images in the window
    n_calibration: int
    alarm_share: float | None  # a
    calibration_alarm_share: float  # a_0
    alarm_share_p_value: float | None  # p_a: one-sided Fisher exact test, a > a_0
    ks_statistic: float | None  # D
    p_value: float | None
    median: float | None
    calibration_median: float
    median_shift: float | None  # m, in calibration standard deviations
    enough: bool  # n >= min_images: a decision was made
    drifted: bool
    reasons: tuple[str, ...]  # why it drifted (empty when it did not)

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}

    def summary(self) -> str:
        if not self.enough:
            return f"{self.n} images in the window: too few for a drift decision"
        verdict = "DRIFT: " + "; ".join(self.reasons) if self.drifted else "no drift"
        return (
            f"{verdict} (n={self.n}: share over threshold {self.alarm_share:.3f} vs calibration "
            f"{self.calibration_alarm_share:.3f}, Fisher p={self.alarm_share_p_value:.2g}; "
            f"KS D={self.ks_statistic:.3f}, p={self.p_value:.2g}; "
            f"median shift {self.median_shift:+.2f} calibration std)"
        )


def recent_window(log: pd.DataFrame, bundle_id: str, method: str, window: int) -> pd.DataFrame:
    """The last ``window`` images of the scores log scored by ``bundle_id`` with ``method``; an
    image scored again (same bytes) counts once, with its latest row."""
    rows = log[(log["bundle_id"] == bundle_id) & (log["method"] == method)].sort_values("time", kind="stable")
    if "image_sha256" in rows:
        rows = rows.drop_duplicates("image_sha256", keep="last")
    return rows.tail(window)


def drift_statistics(
    scores: np.ndarray, good_scores: np.ndarray, threshold: float, cfg: MonitoringSettings
) -> DriftReport:
    """Compare production ``scores`` with the calibration ``good_scores`` (see the module docstring)."""
    s, g = np.asarray(scores, np.float64), np.asarray(good_scores, np.float64)
    a0 = float(np.mean(g >= threshold))
    g_median, g_std = float(np.median(g)), float(np.std(g)) or 1e-12
    if s.size < cfg.min_images:
        return DriftReport(s.size, g.size, None, a0, None, None, None, None, g_median, None, False, False, ())
    alarms, calibration_alarms = int(np.sum(s >= threshold)), int(np.sum(g >= threshold))
    a = alarms / s.size
    counts = [[alarms, s.size - alarms], [calibration_alarms, g.size - calibration_alarms]]
    share_p = float(fisher_exact(counts, alternative="greater").pvalue)
    test = ks_2samp(s, g)
    median = float(np.median(s))
    shift = (median - g_median) / g_std
    reasons = []
    if share_p < cfg.p_value and a - a0 > cfg.alarm_share_excess:
        reasons.append(
            f"share over threshold {a:.3f} exceeds calibration {a0:.3f} by > {cfg.alarm_share_excess} "
            f"(Fisher p={share_p:.2g} < {cfg.p_value})"
        )
    if test.pvalue < cfg.p_value and abs(shift) > cfg.median_shift:
        reasons.append(
            f"median moved {shift:+.2f} calibration std (limit {cfg.median_shift}; "
            f"KS p={test.pvalue:.2g} < {cfg.p_value})"
        )
    return DriftReport(
        n=int(s.size),
        n_calibration=int(g.size),
        alarm_share=a,
        calibration_alarm_share=a0,
        alarm_share_p_value=share_p,
        ks_statistic=float(test.statistic),
        p_value=float(test.pvalue),
        median=median,
        calibration_median=g_median,
        median_shift=float(shift),
        enough=True,
        drifted=bool(reasons),
        reasons=tuple(reasons),
    )
