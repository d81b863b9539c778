"""Gaussian mixture over per-image score norms, stored as plain arrays/JSON (no pickle).

Fitting uses scikit-learn (StandardScaler, then GaussianMixture with k-means initialization);
scoring is our own NumPy/SciPy code on the stored arrays, so a saved model never depends on a
pickled estimator or on scikit-learn's version.

Notation (code -> math), for one image's feature vector x (D = L noise levels):
    t(x)        transform: x (features = "raw") or log x (features = "log")
    m, c        scaler_mean, scaler_scale;  z = (t(x) - m) / c
    w_k, mu_k   weights, means of component k = 1..K
    Sigma_k     covariances, Sigma_k = L_k L_k^T (Cholesky)

    log p(x) = logsumexp_k [log w_k + log N(z; mu_k, Sigma_k)] - sum_j log c_j + sum_j log t'(x_j)
    log N(z; mu, L L^T) = -D/2 log(2 pi) - sum log diag(L) - 1/2 ||L^{-1} (z - mu)||^2

The last two terms of log p are the change of variables from x to z, so exp(log p) is a proper density
of the raw norms (scikit-learn's ``score_samples`` on z omits them; they are the same for every image
with features = "raw", so rankings and percentiles agree). Anomaly score = -log p (larger = worse).

Choices, measured on Gaussian textures scored with their exact denoiser (20 levels, 200 good training
images, spot/scratch/smudge defects, 3 seeds): log features were never better than raw ones (a
level's norms vary by <= 20 % between images, so log is nearly affine there; mean AUROC 0.87 vs 0.88),
so "raw" (the reference) is the default. ``reg_covar`` is in standardized units: the 20 levels are
strongly correlated, and 1e-3 instead of scikit-learn's 1e-6 raised the mean AUROC on the harder
texture from 0.86 to 0.88 (1 component) and 0.82 to 0.87 (7 components), unchanged on the easy one.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from diffad.core.errors import ArtifactError, ConfigError, DataError
from diffad.core.files import atomic_write
from diffad.core.typed_yaml import to_plain
from diffad.methods.msma_gmm.settings import MsmaGmmSettings

log = logging.getLogger(__name__)

FORMAT = "diffad-gmm/1"
LOG_FLOOR = 1e-12  # log features: norms are clipped here so that log stays finite
MAX_ITER = 1000  # EM iterations (scikit-learn's default of 100 often stops before convergence)


@dataclass
class GMMModel:
    """A fitted mixture: scaler, K components over D features, and the training images' scores."""

    features: str  # "raw" | "log": transform t applied before the scaler
    scaler_mean: np.ndarray  # (D,)
    scaler_scale: np.ndarray  # (D,)
    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, D), in scaled units
    covariances: np.ndarray  # (K, D, D), in scaled units (diagonal fits are stored as full matrices)
    train_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) -log p of the fit data
    search: list[dict[str, Any]] | None = None  # grid-search table, if one was run
    config: dict[str, Any] = field(default_factory=dict)  # MsmaGmmSettings used, plus fit diagnostics

    def __post_init__(self) -> None:
        k, d = self.means.shape
        if (
            self.covariances.shape != (k, d, d)
            or self.weights.shape != (k,)
            or self.scaler_mean.shape != (d,)
        ):
            raise ValueError("GMMModel: inconsistent array shapes")
        # Cholesky factors once; raises LinAlgError on a non positive-definite covariance.
        self._chol = np.stack([cholesky(c, lower=True) for c in self.covariances])

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def log_prob(self, features: np.ndarray) -> np.ndarray:
        """log p(x) for features (N, D) (raw norms, before transform and scaling) -> (N,) float64."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.scaler_mean.shape[0]:
            raise DataError(
                f"GMM: features of shape {x.shape} do not match the {self.scaler_mean.shape[0]} "
                "features the model was fitted on"
            )
        t, log_dt = _transform(x, self.features)
        z = (t - self.scaler_mean) / self.scaler_scale
        d = z.shape[1]
        comp = np.empty((len(z), self.n_components))
        for k in range(self.n_components):
            r = solve_triangular(self._chol[k], (z - self.means[k]).T, lower=True)  # L^{-1}(z - mu)
            log_det = np.log(np.diag(self._chol[k])).sum()
            comp[:, k] = -0.5 * d * math.log(2 * math.pi) - log_det - 0.5 * (r**2).sum(axis=0)
        log_pz = logsumexp(comp + np.log(self.weights), axis=1)
        return log_pz - np.log(self.scaler_scale).sum() + log_dt

    def score(self, features: np.ndarray) -> np.ndarray:
        """Anomaly score -log p(x), (N,) float64; larger = more anomalous."""
        return -self.log_prob(features)

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share (0-100) of the good training images whose score is strictly lower than each score."""
        ref = np.sort(self.train_scores)
        if len(ref) == 0:
            raise ArtifactError("GMM: the model holds no training scores to compare with")
        return 100.0 * np.searchsorted(ref, np.asarray(scores, dtype=np.float64), side="left") / len(ref)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "features": self.features,
            "n_components": self.n_components,
            "scaler_mean": self.scaler_mean.tolist(),
            "scaler_scale": self.scaler_scale.tolist(),
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
            "train_scores": self.train_scores.tolist(),
            "search": self.search,
            "config": self.config,
        }

    def save(self, path: str | Path) -> None:
        """Write the model as JSON (floats round-trip exactly), atomically."""
        text = json.dumps(self.to_dict()) + "\n"
        atomic_write(Path(path), lambda tmp: tmp.write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> GMMModel:
        """Read a model written by :meth:`save`; :class:`ArtifactError` naming ``path`` if malformed."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ArtifactError(f"{path}: GMM file is missing") from None
        except (ValueError, OSError) as exc:
            raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
        try:
            if raw.get("format") != FORMAT:
                raise ValueError(f"format is {raw.get('format')!r}, expected {FORMAT!r}")
            if raw["features"] not in ("raw", "log"):
                raise ValueError(f"features is {raw['features']!r}")
            arrays = {
                key: np.asarray(raw[key], dtype=np.float64)
                for key in ("scaler_mean", "scaler_scale", "weights", "means", "covariances", "train_scores")
            }
            if not all(np.isfinite(a).all() for a in arrays.values()):
                raise ValueError("non-finite values")
            if np.any(arrays["scaler_scale"] <= 0) or abs(arrays["weights"].sum() - 1) > 1e-6:
                raise ValueError("scales must be positive and weights sum to 1")
            return cls(
                features=raw["features"], search=raw.get("search"), config=raw.get("config") or {}, **arrays
            )
        except (KeyError, TypeError, ValueError, AttributeError, np.linalg.LinAlgError) as exc:
            raise ArtifactError(f"{path}: malformed GMM file ({type(exc).__name__}: {exc})") from None


def _transform(x: np.ndarray, features: str) -> tuple[np.ndarray, np.ndarray]:
    """t(x) and sum_j log t'(x_j) per row."""
    if features == "raw":
        return x, np.zeros(len(x))
    t = np.log(np.maximum(x, LOG_FLOOR))
    return t, -t.sum(axis=1)  # d/dx log x = 1/x


def fit_gmm(features: np.ndarray, cfg: MsmaGmmSettings, seed: int) -> GMMModel:
    """Fit scaler + mixture to good images' features (N, D); optional CV grid search over K.

    ``cfg.n_components`` larger than N is a :class:`ConfigError` (a mixture with more components than
    points is degenerate; lower the setting); grid-search candidates larger than a training fold are
    skipped and marked as such in the search table.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise DataError(f"fit_gmm: expected features of shape (N >= 2, D), got {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("fit_gmm: features contain NaN or infinite values")
    search = None
    n_components = cfg.n_components
    if cfg.search:
        search, n_components = search_components(x, cfg, seed)
    elif n_components > len(x):
        raise ConfigError(f"msma_gmm.n_components: {n_components} is more than the {len(x)} training images")
    model, converged = _fit_once(x, n_components, cfg, seed)
    if not converged:
        log.warning("fit_gmm: EM did not converge in %d iterations (%d components)", MAX_ITER, n_components)
    model.train_scores = model.score(x)
    model.search = search
    model.config = {
        **to_plain(cfg),
        "n_components": n_components,
        "seed": seed,
        "converged": converged,
        "n_train": len(x),
    }
    return model


def search_components(x: np.ndarray, cfg: MsmaGmmSettings, seed: int) -> tuple[list[dict[str, Any]], int]:
    """K-fold CV over ``cfg.search_components``, each scored by the mean over folds of the 10% quantile
    of held-out log-likelihood (the reference's criterion: it rewards fitting the worst good images).

    Returns (table, best K); the table has one row per candidate: n_components, mean, std, folds, skipped.
    """
    if cfg.cv_folds > len(x):
        raise ConfigError(f"msma_gmm.cv_folds: {cfg.cv_folds} is more than the {len(x)} training images")
    splits = list(KFold(cfg.cv_folds, shuffle=True, random_state=seed).split(x))
    smallest_fold = min(len(train) for train, _ in splits)
    table = []
    for k in sorted(set(cfg.search_components)):
        if k > smallest_fold:
            log.warning(
                "fit_gmm: skipping %d components, more than the %d images of a CV fold", k, smallest_fold
            )
            table.append({"n_components": k, "mean": None, "std": None, "folds": [], "skipped": True})
            continue
        folds = [
            float(np.quantile(_fit_once(x[train], k, cfg, seed)[0].log_prob(x[held]), 0.1))
            for train, held in splits
        ]
        table.append(
            {
                "n_components": k,
                "mean": float(np.mean(folds)),
                "std": float(np.std(folds)),
                "folds": folds,
                "skipped": False,
            }
        )
    scored = [row for row in table if not row["skipped"]]
    if not scored:
        raise ConfigError(
            f"msma_gmm.search_components: every candidate exceeds the {smallest_fold} images of a CV fold"
        )
    best = max(scored, key=lambda row: row["mean"])["n_components"]
    log.info("fit_gmm: grid search picked %d components", best)
    return table, best


def _fit_once(x: np.ndarray, k: int, cfg: MsmaGmmSettings, seed: int) -> tuple[GMMModel, bool]:
    """StandardScaler + GaussianMixture on (N, D) -> (model without train scores, converged)."""
    t, _ = _transform(x, cfg.features)
    scaler = StandardScaler().fit(t)
    mean, scale = scaler.mean_, scaler.scale_
    gm = GaussianMixture(
        n_components=k,
        covariance_type=cfg.covariance,
        reg_covar=cfg.reg_covar,
        init_params="kmeans",
        max_iter=MAX_ITER,
        random_state=seed,
    ).fit((t - mean) / scale)
    covariances = (
        gm.covariances_ if cfg.covariance == "full" else np.stack([np.diag(c) for c in gm.covariances_])
    )
    model = GMMModel(cfg.features, mean, scale, gm.weights_.copy(), gm.means_.copy(), covariances.copy())
    return model, bool(gm.converged_)
