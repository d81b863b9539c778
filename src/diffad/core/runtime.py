"""Device, thread and seed set-up shared by every stage."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def available_cores() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Cores this process may use minus those busy now (1-minute load average), at least 1."""
    cores = available_cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average
        busy = 0.0
    return max(1, min(cores, cores - int(busy + 0.5)))


def configure_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads; 0 means :func:`free_cores` (for inference, not training).

    Oversubscribing OpenMP threads on a busy 2-core machine costs far more than it gains (5 img/s
    with 2 threads beside a busy process against 40 with 1), so "auto" counts only the cores not
    busy now, and DataLoader workers are never stacked on top of it.
    """
    if threads < 0:
        from diffad.core.errors import ConfigError

        raise ConfigError(f"threads: {threads} is negative; give a count, or 0 for the free cores")
    n = threads or free_cores()
    torch.set_num_threads(n)
    return n


def select_device(name: str = "auto") -> torch.device:
    """``auto`` -> first CUDA device if present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from diffad.core.errors import ConfigError

        raise ConfigError(f"runtime.device: {name!r} requested but no CUDA device is available")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for explicit sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA, none (full float32) on CPU."""
    return torch.bfloat16 if device.type == "cuda" else None
