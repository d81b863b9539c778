"""Every anomaly-detection method, one module each, behind one interface (:mod:`.base`).

A method is registered by being a module of this package: ``detectors/<name>.py`` defines one
:class:`~diffad.detectors.base.Detector` subclass whose ``name`` is ``<name>`` and decorates it
with :func:`~diffad.detectors.base.register`. Support modules (``base``, and any whose name starts
with ``_``) are not methods. :func:`method_names` reads the package's file listing only, without
importing anything, so the typed config can check ``evaluate.methods`` without torch.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Sequence

SUPPORT_MODULES = frozenset({"base"})
# The method `diffad predict` and the dashboard use unless told otherwise: the one that reached both
# baselines on most categories of the real-photo benchmark (README, "Which method to use when").
SERVED_METHOD = "fused"


def method_names() -> tuple[str, ...]:
    """Names of every registered method (the modules of this package), sorted."""
    return tuple(
        sorted(
            info.name
            for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_") and info.name not in SUPPORT_MODULES
        )
    )


def served_method(methods: Sequence[str]) -> str:
    """The method to preselect among ``methods`` (non-empty): :data:`SERVED_METHOD` when it is
    one of them, else the first."""
    return SERVED_METHOD if SERVED_METHOD in methods else methods[0]
