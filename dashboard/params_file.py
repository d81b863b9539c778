"""Write chosen values into ``params.yaml`` in place: the one project file the dashboard writes.

Values go into params.yaml (not a file of the dashboard's own) so that `dvc repro` uses them and
`dvc.lock` records them. The edit is a line edit: only the ``key: value`` part of the lines named
changes; every other line, comment and the layout stay byte-identical. The result is checked with
the typed config before it replaces the file, so a bad value never reaches disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import yaml

from diffad.config import params_from_dict
from diffad.core.files import atomic_write

Scalar = str | int | float | bool


def _scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _edit(text: str, section: str, key: str, value: Scalar) -> str:
    lines = text.splitlines(keepends=True)
    head = next(
        (i for i, line in enumerate(lines) if re.match(rf"{re.escape(section)}:\s*(#.*)?$", line)), None
    )
    if head is None:
        raise ValueError(f"params.yaml has no top-level section {section!r}")
    end, indent, last = len(lines), None, head
    for i in range(head + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():  # the next top-level key ends the section
            end = i
            break
        last = i
        indent = indent or line[: len(line) - len(line.lstrip())]
    indent = indent or "  "
    pattern = re.compile(rf"^{re.escape(indent)}{re.escape(key)}:(\s*)([^#\n]*?)(\s*#.*)?(\r?\n)?$")
    for i in range(head + 1, end):
        match = pattern.match(lines[i])
        if match:
            old_value, comment = match.group(2), match.group(3) or ""
            new_value = _scalar(value)
            if comment:  # keep the comment's column when the new value fits
                pad = max(len(old_value) + len(comment) - len(comment.lstrip()) - len(new_value), 1)
                comment = " " * pad + comment.lstrip()
            lines[i] = f"{indent}{key}:{match.group(1) or ' '}{new_value}{comment}{match.group(4) or ''}"
            return "".join(lines)
    newline = "" if lines[last].endswith("\n") else "\n"
    lines.insert(last + 1, f"{newline}{indent}{key}: {_scalar(value)}\n")
    return "".join(lines)


def set_params(path: Path, values: dict[str, Scalar], loaded: str | None = None) -> str:
    """Set ``{"section.key": value}`` in ``path``; return the new text. Raises ValueError (naming the
    key) when the section is missing or the typed config rejects the result, and naming the file
    when it changed since it was read as ``loaded`` (a sha256 from :func:`fingerprint`) or cannot be
    written; the file is then untouched.

    A symlinked ``params.yaml`` is written through (its target changes, the link stays); the new
    file keeps the old one's mode and replaces it atomically (:func:`diffad.core.files.atomic_write`).
    """
    path = Path(os.path.realpath(path))
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: not writable by this user; nothing was saved")
    text = path.read_text()
    if loaded is not None and fingerprint(text) != loaded:
        raise ValueError(f"{path}: changed on disk since this page read it; reload the page and save again")
    for dotted, value in values.items():
        section, _, key = dotted.partition(".")
        if not key or "." in key:
            raise ValueError(f"{dotted}: only section.key is supported")
        text = _edit(text, section, key, value)
    raw = yaml.safe_load(text)
    params_from_dict(raw, source=str(path))  # ConfigError (a ValueError) names a bad value
    for dotted, value in values.items():
        section, _, key = dotted.partition(".")
        if raw[section][key] != value:
            raise ValueError(f"{path}: {dotted} reads back as {raw[section][key]!r}, not {value!r}")
    mode = stat.S_IMODE(path.stat().st_mode)
    atomic_write(path, lambda tmp: tmp.write_text(text), mode=mode)
    return text


def fingerprint(text: str) -> str:
    """What :func:`set_params` compares to tell whether the file changed since it was read."""
    return hashlib.sha256(text.encode()).hexdigest()
