"""Settings of where and how fast to compute (torch-free, so reading params.yaml stays cheap)."""

from __future__ import annotations

from dataclasses import dataclass

from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import Section, setting


@dataclass(frozen=True)
class RuntimeSettings(Section):
    """Where and how fast to compute.

    On CPU, results depend on the torch thread count (reductions sum in a thread-dependent
    order), so ``threads`` is a fixed number and a DVC param of every stage that computes with
    torch: the same ``dvc.lock`` gives the same models on any machine. ``device`` is not: GPU
    runs are reproducible per device type, not bit-identical to CPU runs.
    """

    key = "runtime"
    device: str = setting("auto", "auto | cpu | cuda | cuda:N (not a DVC param)")
    threads: int = setting(1, "torch threads: a DVC param, CPU results depend on it; more only on free cores")

    def check(self) -> None:
        if self.threads == 0:
            raise ConfigError(
                "runtime.threads: 0 (all cores) is not allowed: trained models depend on the thread "
                "count, so it must be a fixed number recorded with the run (1 on a shared machine)"
            )
        if not 1 <= self.threads <= 1024:
            raise ConfigError(f"runtime.threads: {self.threads!r} is outside [1, 1024]")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"runtime.device: {self.device!r} is not auto, cpu, cuda or cuda:N")
