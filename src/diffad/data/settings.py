"""Settings of `convert_dataset`: what to import, at which resolution, the demo's sizes, the checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import Section, setting

DataSource = Literal["synthetic", "mvtec", "folder"]
Transform = Literal["center-crop-dhariwal", "resize"]
OnBadInput = Literal["fail", "skip"]
FeedbackGoodSplit = Literal["train", "calibration"]


@dataclass(frozen=True)
class DataSettings(Section):
    """What to import and at which resolution (shared by every stage)."""

    key = "data"
    source: DataSource = setting("synthetic", "synthetic (built-in demo) | mvtec | folder")
    path: str = setting("data/raw", "mvtec/folder: one category folder in MVTec AD layout")
    category: str = setting("fabric", "synthetic: fabric | washer; otherwise a name for outputs and reports")
    resolution: int = setting(
        256,
        "working resolution: prepared images, masks, every anomaly map and the pixel metrics; "
        "smaller sources (the 128 px demo) are upsampled to it",
        8,
        4096,
    )
    transform: Transform = setting("center-crop-dhariwal", "ADM/EDM2 centre crop, or resize")
    on_bad_input: OnBadInput = setting("fail", "fail | skip (skip = leave the file out, count it, report it)")
    allow_external_links: bool = setting(False, "follow symbolic links that lead out of data.path")

    def check(self) -> None:
        if not self.category or "/" in self.category or self.category.startswith("."):
            raise ConfigError(f"data.category: {self.category!r} is not a usable folder name")


@dataclass(frozen=True)
class ConvertDatasetSettings(Section):
    """The demo generator's sizes and the manifest checks (the Great Expectations gate)."""

    key = "convert_dataset"
    demo_train_good: int = setting(240, "synthetic demo: good training images", 1, 100_000)
    demo_test_good: int = setting(40, "synthetic demo: good test images", 1, 100_000)
    demo_test_per_defect: int = setting(12, "synthetic demo: test images per defect kind", 1, 100_000)
    demo_test_unknown: int = setting(4, "synthetic demo: unlabelled images under test/unknown", 0, 100_000)
    min_train_images: int = setting(8, "validation fails below this many train images", 1, 1_000_000)
    min_test_images: int = setting(2, "... and below this many labelled test images", 1, 1_000_000)
    near_duplicate_rms: float = setting(
        0.01, "a test image this close (RMS, 0..1) to a train image is a leak; 0 = off", 0.0, 1.0
    )
    calibration_fraction: float = setting(
        0.2, "share of train/good set aside (never fitted on): thresholds come from it", 0.0, 0.9
    )
    min_calibration_images: int = setting(
        20, "validation fails below this many calibration images", 0, 1_000_000
    )


@dataclass(frozen=True)
class FeedbackSettings(Section):
    """How reviewers' verdicts (data/feedback/<category>.jsonl, the dashboard's Review page) join the data."""

    key = "feedback"
    good_split: FeedbackGoodSplit = setting(
        "train", "confirmed false alarms join train (fitted on) | calibration (thresholds)"
    )
