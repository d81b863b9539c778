"""Settings of ``msma_flow``: PatchFlow over per-patch score norms, and its image score."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class MsmaFlowSettings(Section):
    """PatchFlow: a position-conditioned normalizing flow over per-patch score norms."""

    key = "msma_flow"
    num_flows: int = setting(4, "spline coupling + LU linear blocks", 1, 64)
    hidden: int = setting(128, "MLP width", 1, 65536)
    blocks: int = setting(2, "residual blocks per coupling's conditioner", 0, 64)
    bins: int = setting(8, "rational-quadratic spline bins", 1, 256)
    tail_bound: float = setting(3.0, "spline on [-b, b], identity outside", 1e-3, 1e3)
    pos_dim: int = setting(128, "2-D sinusoidal position code size (multiple of 4)", 4, 65536)
    epochs: int = setting(10, "", 1, 100_000)
    batch_size: int = setting(
        16, "images per step (reference 128; more, smaller steps fit 10 CPU epochs)", 1, 1_000_000
    )
    positions_per_step: int = setting(128, "random positions shared across the batch", 1, 10_000_000)
    lr: float = setting(3e-4, "", 1e-8, 1.0)
    weight_decay: float = setting(1e-5, "", 0.0, 10.0)
    val_fraction: float = setting(0.1, "", 0.0, 0.9)
    patience: int = setting(3, "early stopping, in epochs without a new best", 1, 100_000)
    topk: int = setting(10, "image score = mean of the k highest patch NLLs", 1, 1_000_000)

    def check(self) -> None:
        if self.pos_dim % 4:
            raise ConfigError(f"msma_flow.pos_dim: {self.pos_dim} is not a multiple of 4")
