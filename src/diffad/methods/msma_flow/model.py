"""PatchFlow: a normalizing flow over per-patch score-norm vectors, conditioned on the patch position.

Notation (code -> math):
    norms      r in R^L_{>0}   a patch's score norms, one per noise level sigma_1..sigma_L
    x          u in R^L        normalised features u = (log r - loc) / scale (stats of the training set)
    pos_code   c in R^P        2-D sinusoidal code of the patch position (``positional_encoding_2d``)
    z          z in R^L        latent: z = f_K o ... o f_1 (u; c)
    base       N(mu(c), diag sigma(c)^2), mu and log sigma from an MLP on c

    log p(u | c) = log N(z; mu(c), diag sigma(c)^2) + sum_k log |det d f_k / d f_{k-1}|   (change of var.)

Stack (data -> latent): one masked affine autoregressive layer, then ``num_flows`` x
[rational-quadratic spline coupling + LU linear], as in the MSMA reference. Every conditioner's
last layer starts at zero, so an untrained flow is N(0, I) up to the LU mixing.

The NLL the anomaly maps use is -log p(u | c) in the normalised space (nats); the normalisation's
own Jacobian is left out (its log-scale part is a constant, and the log part would only re-weight
patches by their raw magnitude).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from diffad.core.errors import ArtifactError, ConfigError
from diffad.core.files import save_safetensors
from diffad.core.typed_yaml import build, to_plain
from diffad.methods.msma_flow.layers import (
    LULinear,
    MaskedAffineAutoregressive,
    SplineCoupling,
    soft_clamp,
    zero_,
)
from diffad.methods.msma_flow.settings import MsmaFlowSettings

FORMAT = "diffad.patchflow/1"
LOG_SIGMA_BOUND = 7.0  # base log-std soft clamp
NORM_FLOOR = 1e-8  # norms are clamped here before the log (float16 caches can hold exact zeros)


class ConditionalDiagGaussian(nn.Module):
    """Base density N(z; mu(c), diag sigma(c)^2) with (mu, log sigma) = MLP(c); N(0, I) at init."""

    def __init__(self, features: int, context_features: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(context_features, hidden), nn.SiLU(), zero_(nn.Linear(hidden, 2 * features))
        )

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma), each (..., L)."""
        mu, log_sigma = self.net(c).chunk(2, dim=-1)
        return mu, soft_clamp(log_sigma, LOG_SIGMA_BOUND)

    def log_prob(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """log N(z; mu(c), diag sigma(c)^2) summed over the last dim: (...,)."""
        mu, log_sigma = self(c)
        e = (z - mu) * torch.exp(-log_sigma)
        return -0.5 * (e.square() + 2 * log_sigma + math.log(2 * math.pi)).sum(-1)


class PatchFlow(nn.Module):
    """Conditional flow p(u | c) over ``num_features``-dim normalised patch features.

    Buffers (saved with the weights, so inference normalises exactly as training did):
    ``feature_loc``/``feature_scale`` (L,) of log-norms, ``grid`` = (h, w) of the training patch grid
    (0, 0 until trained).
    """

    def __init__(self, num_features: int, cfg: MsmaFlowSettings | None = None) -> None:
        super().__init__()
        cfg = cfg or MsmaFlowSettings()
        if num_features < 2:
            raise ConfigError(f"PatchFlow needs at least 2 features (noise levels), got {num_features}")
        self.num_features, self.cfg = num_features, cfg
        L, P, H = num_features, cfg.pos_dim, cfg.hidden
        layers: list[nn.Module] = [MaskedAffineAutoregressive(L, P, H)]
        for k in range(cfg.num_flows):
            spline = dict(hidden=H, blocks=cfg.blocks, bins=cfg.bins, tail_bound=cfg.tail_bound)
            layers += [SplineCoupling(L, P, parity=k % 2, **spline), LULinear(L, seed=k)]
        self.layers = nn.ModuleList(layers)
        self.base = ConditionalDiagGaussian(L, P, H)
        self.register_buffer("feature_loc", torch.zeros(L))
        self.register_buffer("feature_scale", torch.ones(L))
        self.register_buffer("grid", torch.zeros(2, dtype=torch.int64))

    # -- the flow, on normalised features ------------------------------------------------------
    def forward(self, x: torch.Tensor, pos_code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u (..., L), c broadcastable (..., P) -> (z (..., L), sum of log|det| (...,))."""
        log_det = torch.zeros(x.shape[:-1], device=x.device)
        for layer in self.layers:
            x, ld = layer(x, pos_code)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor, pos_code: torch.Tensor) -> torch.Tensor:
        """z (..., L) -> u (..., L), the exact inverse of :meth:`forward`."""
        for layer in reversed(self.layers):
            z, _ = layer.inverse(z, pos_code)
        return z

    def log_prob(self, x: torch.Tensor, pos_code: torch.Tensor) -> torch.Tensor:
        """log p(u | c) in nats: x (B, L), pos_code (B, P) (or broadcastable shapes) -> (B,)."""
        z, log_det = self(x, pos_code)
        return self.base.log_prob(z, pos_code) + log_det

    @torch.no_grad()
    def sample(self, pos_code: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one u ~ p(u | c) per row of ``pos_code`` (B, P): (B, L)."""
        mu, log_sigma = self.base(pos_code)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        return self.inverse(mu + eps * log_sigma.exp(), pos_code)

    # -- input normalisation -------------------------------------------------------------------
    @torch.no_grad()
    def fit_normalization(self, norms: torch.Tensor) -> None:
        """Store the per-feature mean and std of the training log-norms; ``norms`` (..., L) > 0."""
        log_r = norms.to(torch.float32).clamp_min(NORM_FLOOR).log().reshape(-1, self.num_features)
        self.feature_loc.copy_(log_r.mean(0))
        self.feature_scale.copy_(log_r.std(0).clamp_min(1e-6))

    def normalize(self, norms: torch.Tensor) -> torch.Tensor:
        """Score norms r (..., L) > 0 -> u = (log r - loc) / scale, float32."""
        log_r = norms.to(torch.float32).clamp_min(NORM_FLOOR).log()
        return (log_r - self.feature_loc) / self.feature_scale

    def config_dict(self) -> dict:
        """What :func:`load_patchflow` needs to rebuild the module (stored as JSON metadata)."""
        return {"format": FORMAT, "num_features": self.num_features, "msma_flow": to_plain(self.cfg)}


def save_patchflow(model: PatchFlow, path: str | Path) -> None:
    """Write weights and buffers to ``path`` (safetensors, atomically) with the config JSON in the
    metadata."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"config": json.dumps(model.config_dict())}
    save_safetensors(Path(path), tensors, metadata)


def load_patchflow(path: str | Path, device: str | torch.device = "cpu") -> PatchFlow:
    """Rebuild a :class:`PatchFlow` saved by :func:`save_patchflow`, in eval mode on ``device``.

    Raises :class:`ArtifactError` naming ``path`` when it is missing, not a PatchFlow file, or its
    tensors do not fit the stored config.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: PatchFlow weights not found (run the fit@msma_flow stage)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["config"])
        state = load_file(str(path))
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a PatchFlow safetensors file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ArtifactError(f"{path}: format {found!r} is not {FORMAT!r}")
    try:
        cfg = build(MsmaFlowSettings, meta["msma_flow"], "msma_flow")
        model = PatchFlow(int(meta["num_features"]), cfg)
        model.load_state_dict(state, strict=True)
    except (ConfigError, KeyError, TypeError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: stored PatchFlow does not match its config ({exc})") from None
    return model.to(device).eval()
