"""Monotone rational-quadratic spline with identity tails (Durkan et al. 2019, "Neural Spline Flows").

Notation (paper -> code), per transformed dimension:
    K                  bins              number of bins on [-B, B]
    B                  tail_bound        outside [-B, B] the map is the identity (linear tails)
    x^(k), y^(k)       x_k, y_k          knots: left edges of bin k in input / output
    w_k, h_k           w, h              bin widths / heights (positive, sum to 2B)
    delta^(k)          d_k, d_k1         derivatives at the bin's left / right knot (positive; 1 at +-B)
    s_k                s                 bin slope h_k / w_k
    xi                 xi                (x - x^(k)) / w_k, position inside the bin, in [0, 1]

The raw parameters ``theta`` (..., 3K - 1) hold K unnormalised widths, K heights and K - 1 interior
derivatives; zero ``theta`` gives the identity map (uniform bins, unit derivatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_BIN = 1e-3  # smallest bin width/height, as a fraction of 2B
MIN_DERIVATIVE = 1e-3


def spline_params_count(bins: int) -> int:
    """Raw parameters per transformed dimension: K widths + K heights + (K - 1) derivatives."""
    return 3 * bins - 1


def positive(t: torch.Tensor) -> torch.Tensor:
    """Smooth positive map with positive(0) = 1, ~t for large t, ~1/|t| for very negative t.

    Plays softplus's role; it is several times cheaper on CPU (no exp/log).
    """
    return 0.5 * (t + torch.sqrt(t.square() + 4))


def softmax(t: torch.Tensor) -> torch.Tensor:
    """Softmax over a short last dim; torch.softmax is ~5x slower there on CPU."""
    e = torch.exp(t - t.amax(-1, keepdim=True).detach())
    return e / e.sum(-1, keepdim=True)


def _knots(raw: torch.Tensor, tail_bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes (..., K) and knot positions (..., K + 1) on [-B, B] from unnormalised sizes."""
    bins = raw.shape[-1]
    size = MIN_BIN + (1 - MIN_BIN * bins) * softmax(raw)
    inner = 2 * tail_bound * torch.cumsum(size, dim=-1)[..., :-1] - tail_bound
    edge = torch.full_like(raw[..., :1], tail_bound)  # end knots exactly at -B, B (no rounding drift)
    knots = torch.cat([-edge, inner, edge], dim=-1)
    return knots.diff(dim=-1), knots


def _gather(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.gather(t, -1, index[..., None])[..., 0]


def rq_spline(
    inputs: torch.Tensor, theta: torch.Tensor, tail_bound: float, inverse: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the spline (or its inverse) elementwise.

    ``inputs``: (...,) values; ``theta``: (..., 3K - 1) raw parameters of each value's spline.
    Returns ``(outputs, log_abs_det)`` with the shape of ``inputs``; ``log_abs_det`` is
    log |d outputs / d inputs| of the map actually applied (negative of the forward one when inverting).
    """
    bins = (theta.shape[-1] + 1) // 3
    raw_w, raw_h, raw_d = theta.split([bins, bins, bins - 1], dim=-1)  # split: no zero-filled grads
    widths, x_knots = _knots(raw_w, tail_bound)
    heights, y_knots = _knots(raw_h, tail_bound)
    d_inner = MIN_DERIVATIVE + (1 - MIN_DERIVATIVE) * positive(raw_d)
    derivs = F.pad(d_inner, (1, 1), value=1.0)  # delta = 1 at +-B: slope matches the identity tails

    inside = (inputs >= -tail_bound) & (inputs <= tail_bound)
    v = inputs.clamp(-tail_bound, tail_bound)  # keeps the unused branch of `where` finite (and its grads)
    edges = y_knots if inverse else x_knots
    k = ((v[..., None] >= edges[..., :-1]).sum(-1) - 1).clamp(0, bins - 1)  # bin index

    x_k, y_k, w, h = _gather(x_knots, k), _gather(y_knots, k), _gather(widths, k), _gather(heights, k)
    d_k, d_k1 = _gather(derivs, k), _gather(derivs[..., 1:], k)
    s = h / w
    if inverse:  # solve a xi^2 + b xi + c = 0 for xi in [0, 1] (eqs. 6-8)
        dy = v - y_k
        a = h * (s - d_k) + dy * (d_k1 + d_k - 2 * s)
        b = h * d_k - dy * (d_k1 + d_k - 2 * s)
        c = -s * dy
        disc = (b.square() - 4 * a * c).clamp_min(0)
        xi = (2 * c / (-b - disc.sqrt())).clamp(0, 1)
    else:
        xi = ((v - x_k) / w).clamp(0, 1)
    one_m = 1 - xi
    denom = s + (d_k1 + d_k - 2 * s) * xi * one_m
    slope = s.square() * (d_k1 * xi.square() + 2 * s * xi * one_m + d_k * one_m.square())  # eq. 5 ...
    log_det = slope.log() - 2 * denom.log()  # ... dy/dx = slope / denom^2, the same for both directions
    if inverse:
        out, log_det = x_k + xi * w, -log_det
    else:
        out = y_k + h * (s * xi.square() + d_k * xi * one_m) / denom  # eq. 4
    zero = torch.zeros((), dtype=log_det.dtype, device=log_det.device)
    return torch.where(inside, out, inputs), torch.where(inside, log_det, zero)
