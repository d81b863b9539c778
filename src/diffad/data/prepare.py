"""``convert_dataset``'s library side: raw images -> ``data/prepared/`` (docs/architecture.md).

Prepare, check, swap:

1. every image is decoded and written into a staging folder beside ``out_dir``;
2. ``check(staging)`` (the stage's data validation) runs on the staged dataset;
3. only when it passes is the staging folder swapped in for ``out_dir``.

An interrupted, failed or rejected run therefore leaves the previous ``out_dir`` byte-identical
(and removes its staging folder); the raw data is only read.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from diffad.artifacts.layout import DISPLAY_MAX_SIDE, display_path
from diffad.core.errors import DataError
from diffad.data.images import BadInputError, binarize_mask, load_file, pixel_digest, to_rgb
from diffad.data.manifest import INFO_NAME, MANIFEST_NAME, ManifestRow, write_info, write_manifest
from diffad.data.settings import ConvertDatasetSettings, DataSettings
from diffad.data.sources import BadInputLog, SourceItem, scan_source
from diffad.data.split import set_aside_calibration
from diffad.data.synthetic import write_demo
from diffad.data.transforms import prepare_image, prepare_mask


@dataclass(frozen=True)
class PrepareReport:
    """What :func:`prepare_dataset` wrote."""

    out_dir: Path
    category: str
    source: str
    has_masks: bool
    counts: dict[
        str, int
    ]  # images, train, calibration, test, validation, good, anomaly, unknown, masks, skipped
    by_folder: dict[str, int]  # "<split>/<defect>" -> images
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}

    def __str__(self) -> str:
        c = self.counts
        text = (
            f"prepared {c['images']} images of {self.category!r} ({self.source}) in {self.out_dir}: "
            f"train {c['train']}, calibration {c['calibration']} (held out from train/good), "
            f"test {c['test']} (good {c['good'] - c['train'] - c['calibration']}, "
            f"anomaly {c['anomaly'] - c['validation']}, unknown {c['unknown']}), "
            f"validation defects {c['validation']}, {c['masks']} masks, {c['skipped']} skipped"
        )
        return text + "".join(f"\n  skipped {s['path']}: {s['reason']}" for s in self.skipped)


StagedCheck = Callable[[Path], None]  # raises to reject the staged dataset


@dataclass
class Joined:
    """Rows added to the staged dataset after the source's own, and what to say about them in
    ``info.json`` (its ``feedback`` entry)."""

    rows: list[ManifestRow] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


class ExtraImages(Protocol):
    """Images that join the dataset after the source's own: the reviewers' verdicts
    (:class:`diffad.feedback.dataset.FeedbackInput`, passed in by the `convert_dataset` stage)."""

    def join(
        self,
        source_rows: list[ManifestRow],
        work: Path,
        with_masks: bool,
        convert: Callable[[SourceItem], ManifestRow | None],
    ) -> Joined:
        """Convert the extra images into the staging folder ``work`` with ``convert`` (the
        source's own conversion), never one that is already among ``source_rows``."""
        ...


def prepare_dataset(
    data: DataSettings,
    convert: ConvertDatasetSettings,
    seed: int,
    out_dir: Path,
    check: StagedCheck | None = None,
    feedback: ExtraImages | None = None,
) -> PrepareReport:
    """Import ``data`` (demo, mvtec or folder source) into ``out_dir`` at ``data.resolution``.

    ``check`` is called on the staged dataset before it replaces ``out_dir``; whatever it
    raises rejects the run and leaves ``out_dir`` as it was. Raises :class:`DataError` naming the
    file for unusable input (``on_bad_input: fail``) and whenever train/good or the
    labelled/unlabelled test set ends up empty. ``feedback``: images that join the dataset after
    the source's own (:class:`ExtraImages`, the reviewers' verdicts; rows tagged ``origin``).
    """
    out_dir = Path(out_dir)
    if data.source == "synthetic":
        with tempfile.TemporaryDirectory(prefix=f"diffad-demo-{data.category}-") as tmp:
            write_demo(data.category, convert, seed, Path(tmp))
            shown = f"<demo {data.category}>"
            return _import(Path(tmp), data, convert, seed, out_dir, True, shown, check, feedback)
    root = Path(data.path)
    _check_separate(root, out_dir)
    with_masks = data.source == "mvtec"
    return _import(root, data, convert, seed, out_dir, with_masks, str(root), check, feedback)


def _check_separate(root: Path, out_dir: Path) -> None:
    """Refuse an output inside the raw data (or around it): the raw data is never modified."""
    source, target = root.resolve(), out_dir.resolve()
    if source == target or source in target.parents or target in source.parents:
        raise DataError(f"{out_dir}: the prepared output must not overlap the source folder {root}")


def _import(
    root: Path,
    data: DataSettings,
    convert: ConvertDatasetSettings,
    seed: int,
    out_dir: Path,
    with_masks: bool,
    shown_root: str,
    check: StagedCheck | None,
    feedback: ExtraImages | None = None,
) -> PrepareReport:
    log = BadInputLog(policy=data.on_bad_input, root=root)
    items = scan_source(root, with_masks, log, allow_external_links=data.allow_external_links)
    items = set_aside_calibration(items, convert, seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        rows = [row for item in items if (row := _convert(item, root, work, data, log)) is not None]
        joined = None
        if feedback is not None:  # after the source (and its calibration draw), which it never moves
            joined = feedback.join(rows, work, with_masks, lambda item: _convert(item, root, work, data, log))
            rows += joined.rows
        by_folder = Counter(f"{row.split}/{row.defect}" for row in rows)
        if not by_folder["train/good"] + by_folder["calibration/good"]:
            raise DataError(f"{root / 'train' / 'good'}: no usable good training images")
        if not any(row.split == "test" for row in rows):
            raise DataError(f"{root / 'test'}: no usable test images")
        write_manifest(rows, work / MANIFEST_NAME)
        labels = Counter(row.label for row in rows)
        splits = Counter(row.split for row in rows)
        counts = {
            "images": len(rows),
            "train": splits["train"],
            "calibration": splits["calibration"],
            "test": splits["test"],
            "validation": splits["validation"],
            "good": labels["good"],
            "anomaly": labels["anomaly"],
            "unknown": labels["unknown"],
            "masks": sum(bool(row.mask_path) for row in rows),
            "skipped": len(log.skipped),
        }
        info = {
            "category": data.category,
            "source": data.source,
            "resolution": data.resolution,
            "transform": data.transform,
            "has_masks": with_masks,
            "counts": counts,
            "skipped": log.skipped,
            "defects": sorted({row.defect for row in rows if row.label == "anomaly"}),
            "by_folder": dict(sorted(by_folder.items())),
            "source_root": shown_root,
        }
        if joined is not None:
            info["feedback"] = joined.summary
        write_info(info, work / INFO_NAME)
        if check is not None:
            check(work)
        _replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return PrepareReport(
        out_dir, data.category, data.source, with_masks, counts, info["by_folder"], log.skipped
    )


def _convert(
    item: SourceItem, root: Path, work: Path, data: DataSettings, log: BadInputLog
) -> ManifestRow | None:
    """Decode, transform and write one image (and its mask); ``None`` when it is skipped."""
    try:
        source = load_file(item.image)
        image = to_rgb(source.image, item.image)
    except BadInputError as exc:
        log.report(Path(exc.path), exc.reason)
        return None
    mask = None
    if item.mask is not None:
        try:
            mask = binarize_mask(load_file(item.mask).image, item.mask)
            if mask.size != image.size:
                raise BadInputError(
                    item.mask,
                    f"mask is {mask.size[0]}x{mask.size[1]} but its image is {image.size[0]}x{image.size[1]}",
                )
        except BadInputError as exc:  # a defect image is unusable without its mask: say both
            log.report(Path(exc.path), f"{exc.reason}; its image {log.relative(item.image)} was left out")
            return None

    relative = Path("images") / item.split / item.defect / f"{item.stem}.png"
    prepared = prepare_image(image, data.resolution, data.transform)
    _save(prepared, work / relative)
    if item.split == "test":  # what heatmap overlays are drawn on: the source's resolution, capped
        side = min(*image.size, DISPLAY_MAX_SIDE)
        if side > data.resolution:
            _save(prepare_image(image, side, data.transform), work / display_path(relative.as_posix()))
    mask_path, mask_pixels = "", 0
    if mask is not None:
        mask_relative = Path("masks") / item.split / item.defect / f"{item.stem}.png"
        _save(prepare_mask(mask, data.resolution, data.transform), work / mask_relative)
        mask_path = mask_relative.as_posix()
        mask_pixels = int(np.count_nonzero(np.asarray(mask)))
    pixels = np.asarray(prepared, dtype=np.float64) / 255.0
    return ManifestRow(
        path=relative.as_posix(),
        split=item.split,
        label=item.label,
        defect=item.defect,
        mask_path=mask_path,
        width=prepared.width,
        height=prepared.height,
        channels=len(prepared.getbands()),
        mean=float(pixels.mean()),
        std=float(pixels.std()),
        sha256=source.sha256,
        source_path=item.shown or log.relative(item.image),
        source_mode=source.mode,
        mask_pixels=mask_pixels,
        pixel_sha256=pixel_digest(image),
        origin=item.origin,
    )


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def _replace(work: Path, out_dir: Path) -> None:
    """Swap the finished ``work`` folder in for ``out_dir`` (two renames, then delete the old one)."""
    old = None
    if out_dir.exists() or out_dir.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        old.rmdir()
        out_dir.rename(old)
    work.rename(out_dir)
    if old is None:
        return
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()
