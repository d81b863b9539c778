"""The calibration split: a seeded share of ``train/good`` that no model is fitted on.

Models score the images they were fitted on lower than unseen good images, so every statistic of
good images that a decision depends on (threshold, normalisation, standardisation, percentiles)
is taken on these held-out images instead. ``convert_dataset`` marks them ``split = calibration``
in the manifest; every stage that fits a model takes :meth:`PreparedDataset.training_rows`
(``diffad.data.dataset``: split ``train``, label ``good``) and never sees them, and `evaluate`
takes :meth:`PreparedDataset.calibration_rows`.

    n_calibration = min(max(round(fraction * n_good), min_calibration_images), n_good - min_train_images)

so the share is at least the minimum count when there are images enough for both; when there are
not, validation fails naming both counts (it never silently trains on the calibration images).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from diffad.data.manifest import CALIBRATION, TRAIN
from diffad.data.settings import ConvertDatasetSettings
from diffad.data.sources import SourceItem

_STREAM = 0x5EED_CA1  # a seed stream of its own: the split does not move when other draws change


def calibration_count(n_good: int, cfg: ConvertDatasetSettings) -> int:
    """How many of ``n_good`` good training images are set aside for calibration."""
    wanted = max(round(cfg.calibration_fraction * n_good), cfg.min_calibration_images)
    return max(0, min(wanted, n_good - cfg.min_train_images))


def set_aside_calibration(
    items: Sequence[SourceItem], cfg: ConvertDatasetSettings, seed: int
) -> list[SourceItem]:
    """``items`` with a seeded share of the ``train`` ones moved to the calibration split.

    The draw depends on ``seed`` and on the sorted train stems only, so re-running the import
    (or adding test images) gives the same calibration images.
    """
    train = sorted((i for i, item in enumerate(items) if item.split == TRAIN), key=lambda i: items[i].stem)
    k = calibration_count(len(train), cfg)
    chosen = {train[j] for j in np.random.default_rng([seed, _STREAM]).permutation(len(train))[:k]}
    return [
        dataclasses.replace(item, split=CALIBRATION) if i in chosen else item for i, item in enumerate(items)
    ]
