"""Settings of the monitor flow (flows/monitor.py): production scores against calibration scores."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class MonitoringSettings(Section):
    """Production scores (data/monitoring/) against the calibration scores; not a DVC param.

    Drift = more alarms (a one-sided Fisher test of the alarm counts rejects at ``p_value`` AND the
    share over the threshold exceeds the calibration share by ``alarm_share_excess``) or moved
    scores (a two-sample KS test rejects at ``p_value`` AND the median moved by ``median_shift``
    calibration standard deviations); diffad.monitoring.drift.
    """

    key = "monitoring"
    window: int = setting(200, "most recent images scored by the served bundle and method", 2, 10_000_000)
    min_images: int = setting(20, "fewer: no drift decision", 2, 10_000_000)
    p_value: float = setting(
        0.01, "each test's level: Fisher on the alarm counts, KS on the raw scores", 0.0, 1.0
    )
    alarm_share_excess: float = setting(0.15, "share above threshold minus the calibration share", 0.0, 1.0)
    median_shift: float = setting(1.0, "|median - calibration median| / calibration std", 0.0, 1e6)
    new_verdicts: int = setting(
        20, "retrain once this many verdicts arrived since the served model", 1, 10_000_000
    )
