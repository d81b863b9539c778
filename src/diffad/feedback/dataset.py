"""How reviewers' verdicts become rows of the prepared dataset (``convert_dataset``).

Per image (sha256), the reviewers' effective verdicts (each reviewer's last row) decide:

=====================  ===================================================================
all say *good*         a confirmed false alarm: joins ``feedback.good_split`` (train or
                       calibration) as a good image
all say *defect*       joins the test set under ``test/<defect type>/`` (``reviewed`` when
                       unnamed) with the latest accepted mask; on a source with masks, a
                       defect without one is left out (pixel metrics need it), and reported
*good* and *defect*    the reviewers disagree: left out and reported until one changes
only *unsure*          ignored
=====================  ===================================================================

An image that already is a source image (same file, same decoded pixels, or the same bytes as
its prepared copy, e.g. marked on the heatmap gallery) is never added twice: where the verdict
agrees with its source split it changes nothing; where it would move a test image into training
(or a training image into the test set), validation fails naming the verdict
(:mod:`diffad.feedback.validation`). Every row added carries ``origin = feedback``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diffad.artifacts.layout import FEEDBACK, FeedbackDir
from diffad.data.manifest import ManifestRow
from diffad.data.prepare import Joined
from diffad.data.sources import SourceItem
from diffad.feedback.verdicts import Verdict, effective_verdicts, read_verdicts

UNNAMED_DEFECT = "reviewed"  # test/<this>/ for a defect without a type
FEEDBACK_ORIGIN = "feedback"
FITTED = ("train", "calibration")


@dataclass(frozen=True)
class ImageVerdict:
    """The reviewers' combined verdict on one image."""

    sha256: str
    verdict: str  # good | defect | conflict | unsure
    latest: Verdict  # the most recent effective row (its image, type and mask are used)
    mask: str | None  # the latest accepted mask among the defect rows


def image_verdicts(rows: list[Verdict]) -> list[ImageVerdict]:
    """One :class:`ImageVerdict` per reviewed image, in order of first review."""
    by_image: dict[str, list[Verdict]] = {}
    for _, row in sorted(effective_verdicts(rows).values(), key=lambda pair: pair[0]):
        by_image.setdefault(row.image_sha256, []).append(row)
    combined = []
    for sha, verdicts in by_image.items():
        decided = {v.verdict for v in verdicts} - {"unsure"}
        verdict = decided.pop() if len(decided) == 1 else "conflict" if decided else "unsure"
        defects = [v for v in verdicts if v.verdict == "defect"]
        mask = next((v.mask for v in reversed(defects) if v.mask), None)
        latest = (defects or verdicts)[-1] if verdict == "defect" else verdicts[-1]
        combined.append(ImageVerdict(sha, verdict, latest, mask))
    return combined


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class FeedbackInput:
    """``data/feedback/`` for one category, and where confirmed false alarms go: the extra images
    of :func:`diffad.data.prepare.prepare_dataset` (:class:`~diffad.data.prepare.ExtraImages`)."""

    root: Path
    category: str
    good_split: str = "train"

    @property
    def dir(self) -> FeedbackDir:
        return FeedbackDir(Path(self.root))

    def read(self) -> list[Verdict]:
        return read_verdicts(self.dir.verdicts(self.category))

    def item(self, image: ImageVerdict) -> SourceItem:
        split = self.good_split if image.verdict == "good" else "test"
        defect = "good" if image.verdict == "good" else (image.latest.defect_type or UNNAMED_DEFECT)
        mask = None if image.mask is None else self.dir.root / image.mask
        return SourceItem(
            split=split,
            label="good" if image.verdict == "good" else "anomaly",
            defect=defect,
            stem=f"fb-{image.sha256[:16]}",
            image=self.dir.root / image.latest.image,
            mask=mask,
            origin=FEEDBACK_ORIGIN,
            shown=f"{FEEDBACK}/{image.latest.image}",
        )

    def join(
        self,
        source_rows: list[ManifestRow],
        work: Path,
        with_masks: bool,
        convert: Callable[[SourceItem], ManifestRow | None],
    ) -> Joined:
        """Convert the confirmed images into ``work`` (see the module docstring)."""
        rows = self.read()
        images = image_verdicts(rows)
        known = source_hashes(source_rows, work)
        joined = Joined()
        left_out: list[dict[str, str]] = []
        for image in images:
            name = image.latest.source_name
            if image.verdict in ("unsure", "conflict"):
                if image.verdict == "conflict":
                    left_out.append({"image": name, "reason": "reviewers disagree (good and defect)"})
                continue
            if image.verdict == "defect" and image.mask is None and with_masks:
                reason = "defect without a mask; the source has masks (pixel metrics need one)"
                left_out.append({"image": name, "reason": reason})
                continue
            item = self.item(image)
            escape = outside(item.image, self.dir.images) or (
                item.mask and outside(item.mask, self.dir.masks)
            )
            if escape:
                left_out.append({"image": name, "reason": escape})
                continue
            if not item.image.is_file() or file_sha256(item.image) != image.sha256:
                left_out.append({"image": name, "reason": "image missing or changed (validation names it)"})
                continue
            row = convert(item)
            if row is None:
                left_out.append({"image": name, "reason": "unreadable (see skipped)"})
                continue
            same = known.get(row.sha256) or known.get(row.pixel_sha256)
            if same is not None:  # already a source image: never twice (a leak is validation's)
                for written in (row.path, row.mask_path):
                    if written:
                        (work / written).unlink(missing_ok=True)
                left_out.append({"image": name, "reason": f"already in the source as {same}"})
                continue
            joined.rows.append(row)
        joined.summary = {
            "verdict_rows": len(rows),
            "images_reviewed": len(images),
            "joined": len(joined.rows),
            "good": sum(r.label == "good" for r in joined.rows),
            "defect": sum(r.label == "anomaly" for r in joined.rows),
            "good_split": self.good_split,
            "unsure": sum(i.verdict == "unsure" for i in images),
            "left_out": left_out,
        }
        return joined


def outside(path: Path, folder: Path) -> str:
    """Why ``path`` (links followed) is not a file inside ``folder``; "" when it is."""
    real, home = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    if real.is_relative_to(home):
        return ""
    return f"{path} leads out of {folder} (to {real}); feedback files are copies made at review time"


def source_hashes(rows: list[ManifestRow], prepared_root: Path) -> dict[str, str]:
    """sha256 of the source file, of its decoded pixels, and of its prepared PNG -> the row's path."""
    known: dict[str, str] = {}
    for row in rows:
        if row.origin != "source":
            continue
        shown = f"{row.split}:{row.path}"
        known.setdefault(row.sha256, shown)
        known.setdefault(row.pixel_sha256, shown)
        prepared = Path(prepared_root) / row.path
        if prepared.is_file():
            known.setdefault(file_sha256(prepared), shown)
    return known
