"""A loaded model bundle scoring images: each image reduced to the model input exactly as
`convert_dataset` prepared the training images, plus a display-sized view for the heatmap overlay,
then scored and decided by the bundle's own thresholds (:mod:`diffad.inference.decision`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffad.core.errors import DiffadError
from diffad.core.runtime import select_device
from diffad.data.images import to_rgb
from diffad.data.transforms import plan_geometry, to_model_input
from diffad.inference.bundle import load_bundle
from diffad.inference.decision import MethodThresholds
from diffad.viz.heatmap import add_colorbar, overlay_heatmap

MAX_VIEW = 1024  # side of the overlay's image, at most (px)


@dataclass
class Prediction:
    score: float  # raw score, larger = more anomalous
    norm_score: float  # [0, 1000], decision threshold at 100
    anomalous: bool
    percentile: float  # share (0-100) of the calibration (held-out good) images scoring lower
    heatmap: np.ndarray | None  # (H, W) float32 at the bundle's working resolution (data.resolution)
    overlay: np.ndarray | None  # (H', W' + bar, 3) uint8: the input's resolution (capped), a colour scale
    change: str = ""  # how the input was cropped or scaled to the bundle's resolution; "" if not


@dataclass(frozen=True)
class PreparedInput:
    """What scoring one image needs, without the full-size decode: a few hundred KB at most."""

    x: torch.Tensor  # (1, 3, R, R) float32 in [-1, 1], the model input
    view: np.ndarray  # (S, S, 3) uint8, the centre square at most MAX_VIEW px, for the overlay
    change: str  # "" when the image is already R x R, otherwise how it was cropped/resized
    source_size: tuple[int, int]  # (W, H) of the decoded image


class Predictor:
    """A loaded bundle. ``predict`` scores one image; ``predict_batch`` a list."""

    def __init__(
        self, models, meta: dict, thresholds: dict[str, MethodThresholds], bundle_id: str | None = None
    ) -> None:
        self.models, self.meta, self.thresholds = models, meta, thresholds
        self.methods: list[str] = list(meta["methods"])
        self.bundle_id = bundle_id  # the id of the bundle these were all loaded from, at once

    @classmethod
    def load(cls, bundle_dir: str | Path, device: str | torch.device = "cpu") -> Predictor:
        device = select_device(device) if isinstance(device, str) else device
        bundle = load_bundle(Path(bundle_dir), device)
        return cls(bundle.models, bundle.meta, bundle.thresholds, bundle.bundle_id)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """(1, 3, R, R) in [-1, 1], exactly as `convert_dataset` prepared the training images."""
        return to_model_input(image, self.meta["resolution"], self.meta["transform"])

    def prepare(self, image: Image.Image) -> PreparedInput:
        """The model input, the overlay's view and a note on cropping/resizing of ``image``."""
        rgb = to_rgb(image)  # the image itself when already RGB: a huge input is not copied
        (w, h), s = rgb.size, min(rgb.size)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)  # centre square
        side = min(s, MAX_VIEW)
        view = rgb.resize((side, side), Image.Resampling.BILINEAR, box=box) if side != s else rgb.crop(box)
        change = self.describe_change(image.size)
        return PreparedInput(self.preprocess(image), np.asarray(view), change, image.size)

    def describe_change(self, size: tuple[int, int]) -> str:
        """How the bundle's preprocessing changes a (W, H) input; "" when it is used as it is."""
        resolution, transform = self.meta["resolution"], self.meta["transform"]
        if size == (resolution, resolution):
            return ""
        geometry = plan_geometry(size, resolution, transform)
        if transform == "resize" and size[0] != size[1]:
            return f"{size[0]}x{size[1]} is resized to {resolution}x{resolution} (aspect ratio not kept)"
        left, top, right, bottom = geometry.crop
        if (right - left, bottom - top) != geometry.scaled:
            kept = min(size)
            return (
                f"{size[0]}x{size[1]} is cropped to its centre {kept}x{kept} and scaled to "
                f"{resolution}x{resolution}; only that square is scored"
            )
        return f"{size[0]}x{size[1]} is scaled to {resolution}x{resolution}"

    def good_scores(self, method: str) -> np.ndarray:
        return np.asarray(self.thresholds[self._check(method)].good_scores)

    def _check(self, method: str) -> str:
        if method not in self.thresholds:
            raise DiffadError(f"method {method!r} is not in this bundle (has: {', '.join(self.methods)})")
        return method

    def score(self, inputs: Sequence[PreparedInput], method: str) -> list[Prediction]:
        """Score prepared inputs in one batch."""
        self._check(method)
        output = self.models.score(torch.cat([p.x for p in inputs]), (method,))[method]
        t = self.thresholds[method]
        norms, pct, flagged = t.normalize(output.scores), t.percentile(output.scores), t.decide(output.scores)
        results = []
        for i, prepared in enumerate(inputs):
            heat = None if output.maps is None else output.maps[i]
            overlay = None
            if heat is not None:
                side = prepared.view.shape[0]
                overlay = add_colorbar(
                    overlay_heatmap(
                        prepared.view, heat, vmin=t.map_vmin, vmax=t.map_vmax, out_size=(side, side)
                    )
                )
            results.append(
                Prediction(
                    float(output.scores[i]),
                    float(norms[i]),
                    bool(flagged[i]),
                    float(pct[i]),
                    heat,
                    overlay,
                    prepared.change,
                )
            )
        return results

    def predict_batch(self, images: Sequence[Image.Image], method: str) -> list[Prediction]:
        return self.score([self.prepare(image) for image in images], method)

    def predict(self, image: Image.Image, method: str) -> Prediction:
        return self.predict_batch([image], method)[0]
