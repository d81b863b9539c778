"""Where production puts what it adds while a model is served: the reviewers' verdicts
(``data/feedback/``) and the scores log (``data/monitoring/``). No DVC stage writes either;
``convert_dataset`` reads the verdicts, the monitor reads both (:mod:`diffad.artifacts.layout`
places them in the project)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FEEDBACK = "data/feedback"  # reviewers' verdicts: FeedbackDir
MONITORING = "data/monitoring"  # production scores: MonitoringDir


@dataclass(frozen=True)
class FeedbackDir:
    """``data/feedback/``: the reviewers' verdicts and what they refer to (``convert_dataset`` dep)."""

    root: Path

    def verdicts(self, category: str) -> Path:
        """Append-only JSON Lines, one verdict per row (schema: diffad.feedback.verdicts)."""
        return self.root / f"{category}.jsonl"

    @property
    def images(self) -> Path:
        return self.root / "images"

    def image(self, sha256: str, suffix: str) -> Path:
        """The reviewed image, named by the sha256 of its bytes (``suffix`` with its dot)."""
        return self.images / f"{sha256}{suffix.lower()}"

    @property
    def masks(self) -> Path:
        return self.root / "masks"

    def mask(self, sha256: str) -> Path:
        """An accepted defect mask (L, 0/255, the image's own size), named by its PNG's sha256."""
        return self.masks / f"{sha256}.png"

    def relative(self, path: Path) -> str:
        """How a verdict row names a file of this folder (posix, relative to ``root``)."""
        return Path(path).relative_to(self.root).as_posix()


@dataclass(frozen=True)
class MonitoringDir:
    """``data/monitoring/``: what production scoring saw, per category."""

    root: Path

    def scores_log(self, category: str) -> Path:
        """JSON Lines, one row per image scored by ``diffad predict`` (diffad.inference.scores_log)."""
        return self.root / category / "scores.jsonl"
