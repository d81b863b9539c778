"""The output folder of `diffad predict`: unique names, no clobbering, no writes through links.

Rules, so that a run never loses a file it did not write:

* every output name is planned before anything is written: ``predictions.csv``, ``skipped.csv``
  and ``heatmaps/<input path relative to the inputs' common folder>.png`` -- the input tree is
  mirrored, so ``test/a/000.png`` and ``test/b/000.png`` get two heatmaps;
* a non-empty folder is refused unless ``force``; with ``force`` only the files listed in the
  previous run's record (:data:`RECORD`) are removed, and a planned output that exists but is
  not in that record (a user's file) stops the run before it starts;
* nothing is written through a symbolic link: a link anywhere between the folder and an output
  stops the run, and files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from diffad.core.errors import DiffadError
from diffad.core.files import atomic_write

RECORD = ".diffad-predict.json"  # the files a run wrote, for the next run's --force
PREDICTIONS = "predictions.csv"
SKIPPED = "skipped.csv"
HEATMAPS = "heatmaps"


def output_names(files: Sequence[Path]) -> list[str]:
    """A unique relative heatmap name per input, mirroring the inputs' folder tree.

    Names are relative to the deepest folder containing every input (a single input folder's
    own tree). Two inputs differing only in suffix (``a.png``, ``a.jpg``) keep it in the name.
    """
    absolute = [Path(os.path.abspath(f)) for f in files]
    base = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    relative = [p.relative_to(base) for p in absolute]
    stems = [r.with_suffix("") for r in relative]
    clashes = {s for s in stems if stems.count(s) > 1}
    names = [
        (s.with_name(f"{s.name}_{r.suffix.lstrip('.').lower()}") if s in clashes else s).as_posix() + ".png"
        for s, r in zip(stems, relative, strict=True)
    ]
    return [f"{HEATMAPS}/{name}" for name in names]


class OutputFolder:
    """``out_dir`` made ready for one run that will write ``planned`` (relative paths)."""

    def __init__(self, out_dir: Path, planned: Sequence[str], *, force: bool) -> None:
        self.root = Path(out_dir)
        self.planned = [PREDICTIONS, SKIPPED, *planned]
        if self.root.exists() and not self.root.is_dir():
            raise DiffadError(f"--out {self.root}: is a file, not a folder; choose a folder for the results")
        previous = self._previous_record()
        entries = [p for p in self.root.iterdir()] if self.root.is_dir() else []
        if entries and not force:
            raise DiffadError(
                f"--out {self.root}: the folder is not empty; choose another --out, or use --force "
                "to replace the results a previous `diffad predict` wrote there (other files are kept)"
            )
        for relative in self.planned:
            self._check_no_link(relative)
            target = self.root / relative
            if (target.exists() or target.is_symlink()) and relative not in previous:
                raise DiffadError(
                    f"{target}: exists and was not written by `diffad predict`; move it or choose "
                    "another --out (--force only replaces earlier predict results)"
                )
        self._clear(previous)
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_record()

    def write(self, relative: str, write: Callable[[Path], None]) -> Path:
        """Call ``write(tmp)`` on a temporary file, then rename it to ``root/relative``."""
        if relative not in self.planned:
            raise ValueError(f"{relative}: not a planned output")
        target = self.root / relative
        self._check_no_link(relative)
        for parent in reversed(target.relative_to(self.root).parents[:-1]):
            folder = self.root / parent
            folder.mkdir(exist_ok=True)
            if folder.is_symlink():  # created by someone else meanwhile
                raise DiffadError(f"{folder}: is a symbolic link; `diffad predict` writes through no links")
        return atomic_write(target, write)  # replaces a link itself, never what it points to

    def _check_no_link(self, relative: str) -> None:
        path = self.root
        for part in Path(relative).parts:
            path = path / part
            if path.is_symlink():
                raise DiffadError(
                    f"{path}: is a symbolic link inside --out {self.root}; `diffad predict` does not "
                    "write through links (remove it or choose another --out)"
                )

    def _previous_record(self) -> set[str]:
        record = self.root / RECORD
        if not record.is_file() or record.is_symlink():
            return set()
        try:
            written = json.loads(record.read_text())["written"]
        except (OSError, ValueError, KeyError, TypeError):
            return set()
        return {w for w in written if isinstance(w, str) and ".." not in Path(w).parts}

    def _clear(self, previous: set[str]) -> None:
        """Remove what the previous run wrote (a link in its place is unlinked, not followed)."""
        for relative in sorted(previous):
            try:
                self._check_no_link(str(Path(relative).parent))
            except DiffadError:
                continue  # its folder became a link: leave whatever is behind it alone
            target = self.root / relative
            if target.is_symlink() or target.is_file():
                target.unlink()
        for relative in sorted({str(p) for r in previous for p in Path(r).parents[:-1]}, reverse=True):
            folder = self.root / relative
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()

    def finish(self) -> None:
        """Narrow the record to the files the run wrote (it listed every planned one while the run
        could still stop half-way, so that ``--force`` clears what a crashed run left)."""
        self._write_record([r for r in self.planned if (self.root / r).is_file()])

    def _write_record(self, written: Sequence[str] | None = None) -> None:
        text = json.dumps({"written": list(self.planned if written is None else written)}, indent=1) + "\n"
        atomic_write(self.root / RECORD, lambda tmp: tmp.write_text(text))
