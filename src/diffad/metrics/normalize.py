"""Threshold normalisation of scores to [0, 1000] with the decision threshold at exactly 100.

    s_norm = clip((s - low) / (tau - low) * 100, 0, 1000)

with tau the decision threshold and ``low`` a reference "perfectly normal" score. With ``low = 0``
this is quadra's ``clip(s / tau * 100, 0, 1000)``. Scores that can be negative (log-likelihoods,
NLL) need ``low < tau`` taken from the good training scores: :meth:`ScoreNormalizer.fit` uses
``low = 0`` when every good score is >= 0 (quadra exactly) and the smallest good score otherwise.
Normalised scores mean the same across methods and categories: >= 100 is anomalous, and the
unclipped part inverts exactly (:func:`denormalize_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffad.metrics.inputs import MetricInputError, as_floats, check_finite

NORM_THRESHOLD = 100.0  # the threshold after normalisation
NORM_MAX = 1000.0  # upper clip


def _check(threshold: float, low: float) -> None:
    if not (np.isfinite(threshold) and np.isfinite(low) and threshold > low):
        raise MetricInputError(
            f"score normalisation needs finite threshold > low, got threshold={threshold!r}, low={low!r}"
            " (for scores that can be <= 0 pass low = the smallest good training score)"
        )


def normalize_scores(raw: np.ndarray, threshold: float, low: float = 0.0) -> np.ndarray:
    """``clip((raw - low) / (threshold - low) * 100, 0, 1000)``: any shape, float64 out.

    Raises:
        MetricInputError (a ``ValueError``): ``threshold <= low`` or either not finite.
    """
    _check(threshold, low)
    scaled = (np.asarray(raw, dtype=np.float64) - low) / (threshold - low) * NORM_THRESHOLD
    return np.clip(scaled, 0.0, NORM_MAX)


def denormalize_scores(norm: np.ndarray, threshold: float, low: float = 0.0) -> np.ndarray:
    """Inverse of :func:`normalize_scores` on (0, 1000): ``low + norm / 100 * (threshold - low)``."""
    _check(threshold, low)
    return low + np.asarray(norm, dtype=np.float64) / NORM_THRESHOLD * (threshold - low)


@dataclass(frozen=True)
class ScoreNormalizer:
    """The two numbers that normalise one method's scores; stored in the model bundle as JSON."""

    threshold: float  # raw decision threshold tau (maps to 100)
    low: float = 0.0  # raw score that maps to 0

    def __post_init__(self) -> None:
        _check(self.threshold, self.low)

    @classmethod
    def fit(cls, good_scores: np.ndarray, threshold: float) -> ScoreNormalizer:
        """``low`` = 0 if every good score is >= 0 (quadra), else min(good scores); ``threshold`` as given."""
        good = as_floats(np.ravel(good_scores))
        if good.size == 0:
            raise MetricInputError("score normalisation needs at least one good score")
        check_finite(good, "good scores for normalisation")
        low = 0.0 if good.min() >= 0 else float(good.min())
        return cls(threshold=float(threshold), low=low)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Normalised scores, see :func:`normalize_scores`."""
        return normalize_scores(raw, self.threshold, self.low)

    def invert(self, norm: np.ndarray) -> np.ndarray:
        """Raw scores from normalised ones (exact inside (0, 1000))."""
        return denormalize_scores(norm, self.threshold, self.low)

    def to_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "low": self.low}

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> ScoreNormalizer:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys raise."""
        if set(d) != {"threshold", "low"}:
            raise MetricInputError(f"normalisation stats need keys threshold, low; got {sorted(d)}")
        return cls(threshold=float(d["threshold"]), low=float(d["low"]))
