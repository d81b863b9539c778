"""``ensemble``: msma_gmm, msma_flow and ddim, each standardised by its statistics on the
calibration images, averaged (image scores over all three, maps over the two with maps)."""

from __future__ import annotations

import numpy as np

from diffad.components.detector import CompositeDetector, MethodOutput
from diffad.components.methods import register

MAP_PARTS = ("msma_flow", "ddim")  # the parts with maps


@register
class Ensemble(CompositeDetector):
    name = "ensemble"
    parts = ("msma_gmm", "msma_flow", "ddim")
    order = 40

    def combine(self, parts: dict[str, MethodOutput]) -> MethodOutput:
        return ensemble_output(parts, self.standardizers)


def ensemble_output(parts: dict[str, MethodOutput], standardizers) -> MethodOutput:
    """Average of the standardised image scores and maps of the ensemble's parts."""
    scores = np.mean([standardizers[m].scores(parts[m].scores) for m in Ensemble.parts], axis=0)
    maps = np.mean([standardizers[m].maps(parts[m].maps) for m in MAP_PARTS], axis=0)
    return MethodOutput(scores, maps.astype(np.float32))
