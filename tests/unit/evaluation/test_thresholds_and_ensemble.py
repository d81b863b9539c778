"""Operating points on calibration scores, normalisation and the ensemble's standardisation."""

import json

import numpy as np
import pytest

from diffad.components.detector import MethodOutput, Standardizer
from diffad.core.errors import DataError
from diffad.evaluation.settings import EvaluateSettings
from diffad.evaluation.thresholds import choose_operating_point, false_alarm_upper_bound, fit_thresholds
from diffad.inference.decision import MethodThresholds
from diffad.methods.ensemble.detector import ensemble_output


def cfg(**kwargs) -> EvaluateSettings:
    return EvaluateSettings(methods=("padim",), **kwargs)


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.1, 0.25])
@pytest.mark.parametrize("n", [7, 40, 100, 333])
def test_at_most_the_target_share_of_calibration_images_is_flagged(rate, n):
    rng = np.random.default_rng(n)
    calibration = np.round(rng.gamma(2.0, 1.0, n), 1)  # rounded: ties at the threshold too
    point, _ = choose_operating_point(calibration, cfg(target_false_alarm_rate=rate))
    flagged = np.count_nonzero(calibration >= point.threshold)
    assert flagged / n <= rate
    assert (point.calibration_alarms, point.calibration_images) == (flagged, n)
    # it is the lowest such threshold: one calibration value lower would flag too many
    lower = calibration[calibration < point.threshold]
    if lower.size:
        assert np.count_nonzero(calibration >= lower.max()) / n > rate


def test_a_fresh_good_sample_is_flagged_at_about_the_target_rate():
    rng = np.random.default_rng(0)
    rate = 0.01
    point, _ = choose_operating_point(rng.lognormal(0, 0.5, 20_000), cfg(target_false_alarm_rate=rate))
    fresh = rng.lognormal(0, 0.5, 200_000)
    assert np.mean(fresh >= point.threshold) == pytest.approx(rate, abs=0.0015)
    assert rate < point.false_alarm_rate_upper < 0.0115  # 20 000 images back it tightly


def test_the_stated_uncertainty_is_the_clopper_pearson_bound():
    # no alarm in n images: the exact 95 % bound is 1 - 0.05 ** (1 / n)
    assert false_alarm_upper_bound(0, 299) == pytest.approx(1 - 0.05 ** (1 / 299))
    assert false_alarm_upper_bound(0, 298) > 0.01 > false_alarm_upper_bound(0, 299)
    few, _ = choose_operating_point(np.arange(40.0), cfg(target_false_alarm_rate=0.01))
    assert few.calibration_alarms == 0 and few.threshold > 39 and "cannot resolve" in few.note
    assert few.false_alarm_rate_upper == pytest.approx(1 - 0.05 ** (1 / 40))


def test_fixed_score_and_miss_rate_policies():
    calibration = np.linspace(1.0, 2.0, 101)
    far, reference = choose_operating_point(calibration, cfg(target_false_alarm_rate=0.05))
    same, _ = choose_operating_point(
        calibration, cfg(threshold_policy="fixed_score", target_false_alarm_rate=0.05)
    )
    assert same.threshold == pytest.approx(far.threshold)  # 100 on the reference scale = the FAR threshold
    higher, _ = choose_operating_point(
        calibration, cfg(threshold_policy="fixed_score", fixed_score=150.0, target_false_alarm_rate=0.05)
    )
    assert reference(np.array([higher.threshold]))[0] == pytest.approx(150.0)
    assert higher.parameters == {"fixed_score": 150.0, "target_false_alarm_rate": 0.05}
    defects = np.linspace(1.5, 3.5, 40)
    missed, _ = choose_operating_point(
        calibration, cfg(threshold_policy="miss_rate", target_miss_rate=0.1), validation_defects=defects
    )
    assert np.count_nonzero(defects < missed.threshold) == 4 and missed.validation_defects == 40
    assert missed.false_alarm_rate == pytest.approx(np.mean(calibration >= missed.threshold))
    with pytest.raises(DataError, match="validation/<defect>"):
        choose_operating_point(calibration, cfg(threshold_policy="miss_rate"))


def test_thresholds_come_from_calibration_outputs_and_round_trip():
    rng = np.random.default_rng(1)
    calibration = MethodOutput(rng.normal(0, 1, 200), rng.normal(0, 1, (200, 8, 8)).astype(np.float32))
    t = fit_thresholds(calibration, cfg(target_false_alarm_rate=0.05))
    assert t.normalize(np.array([t.threshold]))[0] == pytest.approx(100.0)
    assert list(t.decide(np.array([t.threshold, np.nextafter(t.threshold, -np.inf)]))) == [True, False]
    assert np.mean(calibration.maps >= t.pixel_threshold) <= 0.05
    assert t.map_vmin < t.pixel_threshold < t.map_vmax
    assert t.percentile(np.array([np.inf]))[0] == 100.0 and t.percentile(np.array([-np.inf]))[0] == 0.0
    assert t.good_stats["n"] == 200 and t.good_scores == sorted(t.good_scores)
    assert MethodThresholds.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    no_maps = fit_thresholds(MethodOutput(calibration.scores, None), cfg())
    assert no_maps.pixel_threshold is None and no_maps.map_vmin is None


def test_ensemble_puts_parts_on_one_scale():
    rng = np.random.default_rng(2)
    good = {
        m: MethodOutput(rng.normal(loc, scale, 100), rng.normal(loc, scale, (100, 4, 4)).astype(np.float32))
        for m, loc, scale in (("msma_gmm", 50, 10), ("msma_flow", -3, 0.1), ("ddim", 0.2, 0.01))
    }
    standardizers = {m: Standardizer.fit(o) for m, o in good.items()}
    combined = ensemble_output(good, standardizers)
    # every part standardised on its own good images: the ensemble of good images is ~N(0, small)
    assert abs(combined.scores.mean()) < 0.2
    assert abs(combined.maps.mean()) < 0.2
    # an image anomalous for one method only moves the ensemble by about 1/3 of its z-score
    shifted = {m: MethodOutput(o.scores.copy(), o.maps.copy()) for m, o in good.items()}
    shifted["ddim"].scores[0] += 0.01 * 9
    delta = ensemble_output(shifted, standardizers).scores[0] - combined.scores[0]
    assert delta == pytest.approx(9 / 3, rel=0.15)
