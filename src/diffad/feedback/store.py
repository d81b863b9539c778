"""Recording a verdict: copy the image, save an accepted mask, append the row (the dashboard's call).

The reviewed image is copied into ``data/feedback/images/<sha256>.<ext>`` when it is reviewed, so
``convert_dataset`` still finds it after predict's inputs are gone; an accepted heatmap mask is
saved as ``data/feedback/masks/<sha256 of the PNG>.png`` in the image's own geometry
(:func:`mask_to_source`), so it pairs with the copied image like a ground-truth mask.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from diffad.artifacts.layout import FeedbackDir
from diffad.core.files import atomic_write, sha256_of
from diffad.core.jsonl import utc_now
from diffad.data.images import read_image
from diffad.data.settings import Transform
from diffad.data.transforms import plan_geometry
from diffad.feedback.verdicts import (
    SCHEMA_VERSION,
    FeedbackError,
    Verdict,
    append_verdict,
    read_verdicts,
)


@dataclass(frozen=True)
class ReviewedPrediction:
    """What the model said about the image when it was reviewed (all optional)."""

    bundle_id: str | None = None
    run_id: str | None = None
    method: str | None = None
    score: float | None = None
    norm_score: float | None = None
    threshold: float | None = None


def mask_to_source(mask: np.ndarray, size: tuple[int, int], transform: Transform) -> Image.Image:
    """A ``(R, R)`` boolean mask on the model input -> an ``L`` 0/255 mask at the source (W, H).

    The inverse of :func:`diffad.data.transforms.prepare_mask`: the square is put back where the
    crop took it from (outside the crop nothing was scored: 0), then scaled to the source size.
    """
    resolution = int(mask.shape[0])
    if mask.ndim != 2 or mask.shape[1] != resolution:
        raise ValueError(f"expected a square (R, R) mask, got {mask.shape}")
    square = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")
    geometry = plan_geometry(size, resolution, transform)
    canvas = Image.new("L", geometry.scaled, 0)
    canvas.paste(square, geometry.crop[:2])
    return canvas.resize(size, resample=Image.Resampling.NEAREST)


class FeedbackStore:
    """``data/feedback/`` of a project: write verdicts, read them back."""

    def __init__(self, root: Path) -> None:
        self.dir = FeedbackDir(Path(root))

    def read(self, category: str) -> list[Verdict]:
        return read_verdicts(self.dir.verdicts(category))

    def record(
        self,
        category: str,
        *,
        reviewer: str,
        verdict: str,
        image: Path,
        source_name: str | None = None,
        defect_type: str | None = None,
        mask: Image.Image | None = None,
        prediction: ReviewedPrediction | None = None,
    ) -> Verdict:
        """Copy ``image`` in, save ``mask`` (an ``L`` image of the image's size), append the row."""
        image = Path(image)
        if not image.is_file():
            raise FeedbackError(f"{image}: the reviewed image is not there (moved or deleted?)")
        reviewer = reviewer.strip()
        if not reviewer:
            raise FeedbackError("reviewer: give a name (verdicts record who decided)")
        sha = sha256_of(image)
        stored = self.dir.image(sha, image.suffix or ".png")
        if not stored.is_file():
            atomic_write(stored, lambda tmp: tmp.write_bytes(image.read_bytes()))
        mask_path = None
        if mask is not None:
            if verdict != "defect":
                raise FeedbackError(f"{image}: only a defect verdict can carry a mask")
            mask_path = self.dir.relative(self._save_mask(mask, image))
        p = prediction or ReviewedPrediction()
        row = Verdict(
            schema_version=SCHEMA_VERSION,
            category=category,
            reviewer=reviewer,
            time=utc_now(),
            image_sha256=sha,
            image=self.dir.relative(stored),
            source_name=source_name or str(image),
            verdict=verdict,
            defect_type=(defect_type or None) if verdict == "defect" else None,
            mask=mask_path,
            bundle_id=p.bundle_id,
            run_id=p.run_id,
            method=p.method,
            score=None if p.score is None else float(p.score),
            norm_score=None if p.norm_score is None else float(p.norm_score),
            threshold=None if p.threshold is None else float(p.threshold),
        )
        append_verdict(self.dir.verdicts(category), row)
        return row

    def _save_mask(self, mask: Image.Image, image: Path) -> Path:
        size = read_image(image).size  # upright, as the model and convert_dataset see it
        if mask.size != size:
            raise FeedbackError(
                f"{image}: the mask is {mask.size[0]}x{mask.size[1]}, the image {size[0]}x{size[1]}"
            )
        buffer = io.BytesIO()
        mask.convert("L").point(lambda v: 255 if v else 0).save(buffer, format="PNG")
        data = buffer.getvalue()
        path = self.dir.mask(hashlib.sha256(data).hexdigest())
        if not path.is_file():
            atomic_write(path, lambda tmp: tmp.write_bytes(data))
        return path
