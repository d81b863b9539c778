"""Which files `diffad predict` reads: image files named directly or found (recursively) in
folders, in a stable order, once each; anything that is not a regular file is skipped with the
reason, never opened."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

from diffad.core.errors import DataError
from diffad.core.files import safe_name

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def collect_inputs(inputs: Sequence[Path]) -> list[Path]:
    """Image files named directly or found (recursively) in folders, in a stable order, once each."""
    return scan_inputs(inputs)[0]


def scan_inputs(inputs: Sequence[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """(image files, skipped): files named directly or found (recursively) in folders, in a
    stable order, once each; entries with an image suffix that are not regular files (a FIFO, a
    device, a dangling link, a folder named ``x.png``) are skipped with the reason, never read."""
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in inputs:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists() or path.is_symlink():
            candidates = [path]
        else:
            raise DataError(f"{safe_name(path)}: no such file or folder")
        for candidate in candidates:
            reason = not_a_regular_file(candidate)
            if reason:
                skipped.append({"path": safe_name(candidate), "error": f"{safe_name(candidate)}: {reason}"})
            else:
                files.append(candidate)
    if not files:
        raise DataError(f"no images found in {', '.join(safe_name(p) for p in inputs)}")
    return list(dict.fromkeys(files)), skipped


def not_a_regular_file(path: Path) -> str:
    """Why ``path`` is not an image file to read ("" when it is a regular file, or a link to one)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a dangling link" if path.is_symlink() else "vanished"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISREG(mode):
        return ""
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "a device")
    return f"{'a link to ' if path.is_symlink() else ''}{kind}, not an image file"
