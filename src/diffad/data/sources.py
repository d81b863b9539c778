"""Find the images (and masks) of one category in the MVTec AD layout or a one-class folder.

Layout (``root`` = one category)::

    train/good/*                          good training images (the only train folder)
    test/good/*                           good test images, no masks
    test/<defect>/*                       defective test images (any folder name)
    test/unknown/*                        unlabelled images to score
    validation/<defect>/*                 optional labelled defects for the miss-rate threshold policy
    ground_truth/<defect>/<stem>_mask.png masks (``<stem>.png`` is accepted too); mvtec only

Symbolic links that lead out of ``root`` are reported (a dataset should not silently pull files
from elsewhere) unless ``data.allow_external_links`` is set; links within ``root`` are fine.

Scanning checks the structure only (folders, mask pairing, name clashes); decoding happens when
the images are prepared. Problems go to a :class:`BadInputLog`, which raises in ``fail`` mode and
records in ``skip`` mode, so both the scanner and the importer share one policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from diffad.core.errors import DataError
from diffad.data.images import BadInputError, is_ignored
from diffad.data.settings import OnBadInput

GOOD = "good"
UNKNOWN = "unknown"
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class SourceItem:
    """One source image and where it goes."""

    split: str  # train | test | validation (calibration is set aside later, data/split.py)
    label: str  # good | anomaly | unknown
    defect: str  # good, defect folder name, or unknown
    stem: str  # output file stem
    image: Path
    mask: Path | None  # None: no mask (good, unknown, folder source, or missing)
    origin: str = "source"  # source | feedback (a reviewer's verdict, diffad.feedback.dataset)
    shown: str = ""  # the manifest's source_path when not relative to the source root


@dataclass
class BadInputLog:
    """``fail``: raise the error; ``skip``: record ``{"path", "reason"}`` and go on."""

    policy: OnBadInput
    root: Path
    skipped: list[dict[str, str]] = field(default_factory=list)
    allow_external_links: bool = False  # follow symlinks that leave ``root``

    def report(self, path: Path, reason: str) -> None:
        if self.policy == "fail":
            raise BadInputError(path, reason)
        self.skipped.append({"path": self.relative(path), "reason": reason})

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def scan_source(
    root: Path, with_masks: bool, log: BadInputLog, allow_external_links: bool = False
) -> list[SourceItem]:
    """All images under ``root`` (MVTec layout), sorted by (split, defect, stem).

    ``with_masks`` (mvtec): every defect folder needs ``ground_truth/<defect>/``; masks are paired
    by stem. Without (folder source): ``ground_truth`` is ignored. ``allow_external_links``:
    follow symbolic links that lead out of ``root`` instead of reporting them.
    """
    log.allow_external_links = allow_external_links
    if not root.is_dir():
        raise DataError(f"{root}: source folder not found (data.path)")
    train_good = root / "train" / GOOD
    if not train_good.is_dir():
        raise DataError(f"{train_good}: missing; the source needs train/good/ with good images")
    test_dir = root / "test"
    if not test_dir.is_dir():
        raise DataError(f"{test_dir}: missing; the source needs test/<good|defect|unknown>/ folders")
    for extra in _entries(root / "train"):
        if extra != train_good:
            log.report(extra, "train/ may only hold the good/ folder")

    items = [_item("train", GOOD, path) for path in _images(train_good, log)]
    ground_truth = root / "ground_truth"
    matched: set[Path] = set()
    for folder in _entries(test_dir):
        if not _inside(folder, log):
            continue
        if not folder.is_dir():
            log.report(folder, "file directly under test/; images belong in test/<good|defect|unknown>/")
            continue
        defect = folder.name
        images = _images(folder, log)
        if defect in (GOOD, UNKNOWN) or not with_masks:
            items += [_item("test", defect, path) for path in images]
            continue
        masks_dir = ground_truth / defect
        if not masks_dir.is_dir():
            raise DataError(f"{masks_dir}: missing; mvtec defect folder {folder} needs its masks")
        masks = _mask_index(masks_dir, log)
        for path in images:
            mask = masks.get(path.stem)
            if mask is not None:
                matched.add(mask)
            items.append(_item("test", defect, path, mask))

    validation = root / "validation"
    if validation.is_dir():  # labelled defects for the miss-rate policy: scored, never fitted on
        for folder in _entries(validation):
            if not folder.is_dir() or folder.name in (GOOD, UNKNOWN):
                log.report(folder, "validation/ may only hold defect folders (validation/<defect>/)")
                continue
            items += [_item("validation", folder.name, path) for path in _images(folder, log)]

    if with_masks and ground_truth.is_dir():
        for folder in _entries(ground_truth):
            for mask in _entries(folder) if folder.is_dir() else [folder]:
                if mask not in matched:
                    log.report(mask, "mask without a matching defect image in test/")
    return _unique_stems(items, log)


def _item(split: str, defect: str, image: Path, mask: Path | None = None) -> SourceItem:
    label = GOOD if defect == GOOD else UNKNOWN if defect == UNKNOWN else "anomaly"
    return SourceItem(split=split, label=label, defect=defect, stem=image.stem, image=image, mask=mask)


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_ignored(p))


def _inside(path: Path, log: BadInputLog) -> bool:
    """False (reported) for a symbolic link whose target lies outside the source root."""
    if log.allow_external_links or not path.is_symlink():
        return True
    target = path.resolve()
    if target == log.root.resolve() or log.root.resolve() in target.parents:
        return True
    log.report(
        path,
        f"symbolic link to {target}, outside the data folder {log.root}; "
        "set data.allow_external_links: true to use it",
    )
    return False


def _images(folder: Path, log: BadInputLog) -> list[Path]:
    """The files of an image folder; sub-folders are reported, an empty folder is an error."""
    files = []
    for path in _entries(folder):
        if not _inside(path, log):
            continue
        if path.is_dir():
            log.report(path, "unexpected sub-folder inside an image folder")
        else:
            files.append(path)
    if not files:
        log.report(folder, "empty image folder")
    return files


def _mask_index(folder: Path, log: BadInputLog) -> dict[str, Path]:
    """Image stem -> mask file; ``<stem>_mask.png`` preferred over ``<stem>.png``."""
    index: dict[str, Path] = {}
    for path in _entries(folder):
        if not _inside(path, log):
            continue
        if path.is_dir():
            log.report(path, "unexpected sub-folder inside a mask folder")
            continue
        stem = path.stem.removesuffix(MASK_SUFFIX)
        if stem not in index or path.stem.endswith(MASK_SUFFIX):
            index[stem] = path
    return index


def _unique_stems(items: list[SourceItem], log: BadInputLog) -> list[SourceItem]:
    """Two files with one stem in one folder (``a.png``, ``a.jpg``) would share an output name."""
    seen: dict[tuple[str, str, str], SourceItem] = {}
    for item in items:
        key = (item.split, item.defect, item.stem)
        if key in seen:
            log.report(item.image, f"same name as {seen[key].image.name}; output names must be unique")
            continue
        seen[key] = item
    return sorted(seen.values(), key=lambda it: (it.split, it.defect, it.stem))
