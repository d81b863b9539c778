"""The operating point of one method, chosen without test labels, and the statistics it rests on.

Every number here comes from the **calibration images** (good images held out of training,
data/split.py) or, for the ``miss_rate`` policy, from user-supplied labelled **validation defects**;
the test images never enter (:func:`fit_thresholds` does not take them), so the reports measure the
shipped threshold honestly and no test label can move it.

Notation: c_(1) <= ... <= c_(n) the calibration scores, r the target false-alarm rate,
k = floor(r n), an image is flagged when ``score >= tau``.

    false_alarm_rate  tau = the smallest calibration score with #{c >= tau} <= k (above every
                      calibration score when k = 0). On fresh good images the expected false-alarm
                      rate is <= k / (n + 1) <= r (the order statistic's exchangeability bound).
    fixed_score       tau = the raw score whose normalised score is ``fixed_score`` on the reference
                      scale (0-1000, 100 = the false_alarm_rate threshold): stable across retraining
    miss_rate         tau = the largest threshold with #{d < tau} <= floor(m n_d) on the validation
                      defect scores d (target miss rate m)

Uncertainty: with x calibration alarms out of n, the false-alarm rate on new good images is below
the one-sided Clopper-Pearson bound ``Beta(CONFIDENCE; x + 1, n - x)`` with probability CONFIDENCE.
With x = 0 it is 1 - (1 - CONFIDENCE)^(1/n): 299 images are needed to back r = 0.01 at 95 %.

What is shipped (:class:`~diffad.inference.decision.MethodThresholds`, the operating point
included) lives with the served path, :mod:`diffad.inference.decision`: serving reads it, only
measuring fits it.
"""

from __future__ import annotations

import math

import numpy as np

from diffad.components.detector import MethodOutput
from diffad.core.errors import DataError
from diffad.evaluation.settings import EvaluateSettings
from diffad.inference.decision import MethodThresholds, OperatingPoint
from diffad.metrics.normalize import ScoreNormalizer

CONFIDENCE = 0.95  # of the stated upper bound on the false-alarm rate


def false_alarm_threshold(good: np.ndarray, rate: float) -> float:
    """The lowest threshold flagging at most ``floor(rate * n)`` of the good scores ``good`` (n,)."""
    good = np.sort(np.asarray(good, np.float64).ravel())
    allowed = math.floor(rate * good.size + 1e-9)
    values = np.unique(good)
    flagged = good.size - np.searchsorted(good, values, side="left")  # #{c >= v} per distinct v
    ok = np.flatnonzero(flagged <= allowed)
    return float(values[ok[0]]) if ok.size else float(np.nextafter(good[-1], np.inf))


def miss_rate_threshold(defects: np.ndarray, rate: float) -> float:
    """The highest threshold missing (score below it) at most ``floor(rate * n)`` of ``defects``."""
    defects = np.sort(np.asarray(defects, np.float64).ravel())
    return float(defects[math.floor(rate * defects.size + 1e-9)]) if defects.size else math.nan


def false_alarm_upper_bound(alarms: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on a rate seen as ``alarms`` out of ``n``."""
    from scipy.stats import beta

    return 1.0 if alarms >= n else float(beta.ppf(confidence, alarms + 1, n - alarms))


def calibration_figures(point: OperatingPoint) -> dict[str, float | int]:
    """The operating point's calibration support as flat metrics (reports/metrics.json)."""
    return {
        "calibration_images": point.calibration_images,
        "calibration_false_alarm_rate": point.false_alarm_rate,
        "calibration_false_alarm_rate_upper": point.false_alarm_rate_upper,
    }


def choose_operating_point(
    calibration: np.ndarray, cfg: EvaluateSettings, validation_defects: np.ndarray | None = None
) -> tuple[OperatingPoint, ScoreNormalizer]:
    """The threshold of ``cfg.threshold_policy`` on calibration scores (n,), and the reference
    scale (100 = the target-false-alarm-rate threshold) that ``fixed_score`` is expressed in."""
    calibration = np.asarray(calibration, np.float64)
    n = calibration.size
    if n == 0:
        raise DataError(
            "no calibration images to choose a threshold on: rerun convert_dataset with "
            "convert_dataset.calibration_fraction > 0 (or min_calibration_images > 0)"
        )
    rate = cfg.target_false_alarm_rate
    reference = _scale(calibration, false_alarm_threshold(calibration, rate))
    used = 0
    if cfg.threshold_policy == "false_alarm_rate":
        threshold, parameters = reference.threshold, {"target_false_alarm_rate": rate}
    elif cfg.threshold_policy == "fixed_score":
        threshold = float(reference.invert(np.array([cfg.fixed_score]))[0])
        parameters = {"fixed_score": cfg.fixed_score, "target_false_alarm_rate": rate}
    else:
        if validation_defects is None or np.size(validation_defects) == 0:
            raise DataError(
                "evaluate.threshold_policy=miss_rate needs labelled validation defects: put defect "
                "images under <data.path>/validation/<defect>/ and rerun convert_dataset"
            )
        used = int(np.size(validation_defects))
        threshold = miss_rate_threshold(validation_defects, cfg.target_miss_rate)
        parameters = {"target_miss_rate": cfg.target_miss_rate}
    alarms = int(np.count_nonzero(calibration >= threshold))
    note = ""
    if cfg.threshold_policy == "false_alarm_rate" and math.floor(rate * n + 1e-9) == 0 and rate > 0:
        note = (
            f"{n} calibration images cannot resolve a {rate:g} false-alarm rate (needs >= "
            f"{math.ceil(1 / rate)}): the threshold sits above every calibration score"
        )
    point = OperatingPoint(
        policy=cfg.threshold_policy,
        parameters=parameters,
        threshold=threshold,
        calibration_images=n,
        calibration_alarms=alarms,
        false_alarm_rate=alarms / n,
        false_alarm_rate_upper=false_alarm_upper_bound(alarms, n),
        confidence=CONFIDENCE,
        validation_defects=used,
        note=note,
    )
    return point, reference


def _scale(good: np.ndarray, threshold: float) -> ScoreNormalizer:
    """0-1000 normalisation of ``threshold`` to 100, its floor from the good scores (metrics/normalize)."""
    low = 0.0 if good.min() >= 0 else float(good.min())
    if threshold <= low:  # a threshold at or below the good floor (miss_rate): keep the scale usable
        low = threshold - max(abs(threshold), 1.0) * 1e-6
    return ScoreNormalizer(threshold=float(threshold), low=low)


def fit_thresholds(
    calibration: MethodOutput, cfg: EvaluateSettings, validation_defects: MethodOutput | None = None
) -> MethodThresholds:
    """Operating point, normalisation and display range from calibration outputs (and, for the
    ``miss_rate`` policy, the validation defects' outputs); no test image is an input."""
    point, reference = choose_operating_point(
        calibration.scores, cfg, None if validation_defects is None else validation_defects.scores
    )
    pixel = vmin = vmax = None
    if calibration.maps is not None:
        good_pixels = calibration.maps.ravel()
        pixel = false_alarm_threshold(good_pixels, cfg.target_false_alarm_rate)
        vmin = float(np.median(good_pixels))
        vmax = max(2 * pixel - vmin, vmin + 1e-6)
    good = np.sort(np.asarray(calibration.scores, np.float64))
    return MethodThresholds(
        threshold=point.threshold,
        operating_point=point,
        pixel_threshold=pixel,
        normalizer=_scale(good, point.threshold).to_dict(),
        reference_normalizer=reference.to_dict(),
        map_vmin=vmin,
        map_vmax=vmax,
        good_scores=[float(s) for s in good],
        good_stats={
            "n": int(good.size),
            "mean": float(good.mean()),
            "std": float(good.std()),
            "min": float(good[0]),
            "median": float(np.median(good)),
            "max": float(good[-1]),
        },
    )
