"""Settings of `evaluate`: which methods, the operating point, what the report holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import Section, setting

# false_alarm_rate: target rate on the calibration images; fixed_score: a fixed normalised score;
# miss_rate: target rate on labelled validation defects (source folder validation/<defect>/)
ThresholdPolicy = Literal["false_alarm_rate", "fixed_score", "miss_rate"]


@dataclass(frozen=True)
class EvaluateSettings(Section):
    """Methods measured, thresholds (from calibration images, never test labels), report contents."""

    key = "evaluate"
    methods: tuple[str, ...] = setting(
        ("msma_gmm", "msma_flow", "msma_features", "ddim", "ensemble", "fused", "patchcore", "padim"),
        "the methods (folders of src/diffad/methods/) measured, in report order",
    )
    threshold_policy: ThresholdPolicy = setting(
        "false_alarm_rate", "false_alarm_rate | fixed_score | miss_rate (dashboard: Operating point)"
    )
    target_false_alarm_rate: float = setting(
        0.05, "share of calibration images flagged; 1/0.05 = min_calibration_images", 0.0, 0.5
    )
    fixed_score: float = setting(
        100.0, "fixed_score: 0-1000 score, 100 = the target_false_alarm_rate threshold", 1e-6, 1000.0
    )
    target_miss_rate: float = setting(
        0.05, "miss_rate: share of labelled validation defects (validation/<defect>/) missed", 0.0, 0.5
    )
    max_overlays: int = setting(400, "heatmap overlays written", 0, 10_000_000)
    worst_per_method: int = setting(8, "mistakes in the montage", 0, 10_000)

    def check(self) -> None:
        if not self.methods:
            raise ConfigError("evaluate.methods: at least one method is needed")
