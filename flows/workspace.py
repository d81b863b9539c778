"""Staging workspaces: a private copy of the project in which a retrain runs the DVC pipeline.

``dvc repro`` rewrites its outputs in place, so running it in the project itself would overwrite
the accepted models and reports before anyone knows whether the new ones are better, or whether
the new data is even valid. A retrain therefore runs in a *staging workspace*:

1. :func:`create_workspace` copies what git sees in the project (tracked and untracked, not
   ignored: code, ``dvc.yaml``, ``params.yaml``, ``.dvc/config``, ``*.dvc`` files) plus the raw
   data folder (``data.path``, usually git-ignored) into a fresh directory outside the project.
   Outputs are git-ignored by DVC, so none of the project's outputs come along.
2. The copy is a DVC repository without git (``core.no_scm``) whose cache *is the project's cache*
   (``cache.dir``). Stages whose command, dependencies and parameters are unchanged are restored
   from DVC's run-cache instead of recomputed, and every output the staging run produces is
   already in the project's cache when it is promoted.
3. Parameters for a category are written into the copy's ``params.yaml`` (the same ``a.b=value``
   syntax as ``dvc exp run -S``), so the copy's ``dvc.lock`` records exactly what ran.

Nothing in the project changes until promotion (:mod:`flows.promotion`) copies the accepted
outputs, ``dvc.lock`` and ``params.yaml`` out of the staging workspace.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from diffad.artifacts.layout import FEEDBACK, LOCK_FILE, PARAMS_FILE, RUNS
from diffad.core.errors import ConfigError, DataError
from diffad.core.typed_yaml import apply_override
from flows.dvc_cli import dvc_environment

RECORDS_DIR = RUNS  # the flows' own records inside the project; never copied into a workspace


def read_params(project: Path, params_file: str = PARAMS_FILE) -> dict[str, Any]:
    """The project's parameters as a plain dict (empty when the file is missing or empty)."""
    path = project / params_file
    if not path.exists():
        return {}
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def category_overrides(category: str | None, source: str | None, data_path: str | None) -> list[str]:
    """``data.*`` overrides for one category (JSON-quoted so that YAML keeps them strings)."""
    fields = {"data.category": category, "data.source": source, "data.path": data_path}
    return [f"{key}={json.dumps(value)}" for key, value in fields.items() if value is not None]


def apply_overrides(params: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``params`` with ``a.b.c=value`` overrides applied (values parsed as YAML)."""
    result = json.loads(json.dumps(params))  # deep copy of plain YAML data
    for item in overrides:
        apply_override(result, item)
    return result


def lookup(params: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """``params["a"]["b"]`` for ``"a.b"``; ``default`` when any level is missing."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def tree_hash(path: Path) -> str:
    """SHA-256 over the relative paths and contents of every file under ``path`` (or of one file).

    Independent of timestamps and of where ``path`` lives; a missing path hashes as empty.
    """
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.name if file == path else file.relative_to(path).as_posix()
        digest.update(rel.encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def project_files(project: Path) -> list[str]:
    """Files git sees in ``project`` (tracked and untracked, not ignored), minus the flows' records
    and DVC outputs (``dvc.lock``) that were promoted into the project but are not git-ignored."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=project,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DataError(
            f"{project}: not a git work tree; a retrain copies the files git sees ({exc})"
        ) from None
    skip = (f"{RECORDS_DIR}/", *(f"{out}/" for out in lock_outputs(project)))
    outs = set(lock_outputs(project))
    names = [name for name in done.stdout.decode().split("\0") if name]
    return [n for n in names if n not in outs and not n.startswith(skip) and (project / n).is_file()]


def copy_path(src: Path, dest: Path) -> None:
    """Copy a file or a directory tree to ``dest`` (parents created, contents merged)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dest)


def replace_path(src: Path, dest: Path) -> None:
    """Make ``dest`` a copy of ``src``, swapping it in only once the copy is complete."""
    staged = dest.with_name(f".{dest.name}.incoming")
    remove_path(staged)
    copy_path(src, staged)
    swap_in(staged, dest)


def swap_in(new: Path, dest: Path) -> None:
    """Move ``new`` (same file system) to ``dest``, replacing whatever was there."""
    old = dest.with_name(f".{dest.name}.outgoing")
    remove_path(old)
    if dest.exists() or dest.is_symlink():
        os.replace(dest, old)
    os.replace(new, dest)
    remove_path(old)


def remove_path(path: Path) -> None:
    """Delete a file, link or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def dvc_cache_dir(project: Path) -> Path:
    """The project's DVC cache directory (``dvc cache dir`` resolves the configured location)."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "cache", "dir"],
        cwd=project,
        env=dvc_environment(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise DataError(f"{project}: `dvc cache dir` failed; is it a DVC project?\n{done.stderr.strip()}")
    return Path(done.stdout.strip())


def dvc_config_local(workspace: Path, settings: Iterable[tuple[str, str]]) -> None:
    """Set ``section.option`` values in the workspace's ``.dvc/config.local`` through DVC itself."""
    for key, value in settings:
        subprocess.run(
            [sys.executable, "-m", "dvc", "config", "--local", key, value],
            cwd=workspace,
            env=dvc_environment(),
            capture_output=True,
            text=True,
            check=True,
        )


def create_workspace(project: Path, workspace: Path, params: dict[str, Any], data_path: str | None) -> None:
    """Copy ``project`` into ``workspace`` as a git-less DVC repository sharing the project's cache.

    ``params`` is written as the workspace's ``params.yaml`` when it differs from the project's;
    ``data_path`` (relative to the project) and ``data/feedback/`` are copied as well, so the run
    sees a snapshot of the raw data and the verdicts that cannot change under it.
    """
    if not (project / ".dvc").is_dir():
        raise DataError(f"{project}: no .dvc directory; not a DVC project")
    if workspace.exists():
        raise DataError(f"{workspace}: staging workspace already exists")
    for name in project_files(project):
        copy_path(project / name, workspace / name)
    if data_path and not Path(data_path).is_absolute() and (project / data_path).exists():
        copy_path(project / data_path, workspace / data_path)
    if (project / FEEDBACK).is_dir():  # reviewers' verdicts: a convert_dataset dep, git-ignored data
        copy_path(project / FEEDBACK, workspace / FEEDBACK)
    settings = [("core", "no_scm", "true"), ("cache", "dir", str(dvc_cache_dir(project)))]
    local = project / ".dvc" / "config.local"
    if local.exists():  # remotes' credentials etc. stay available; DVC merges the settings in
        copy_path(local, workspace / ".dvc" / "config.local")
        dvc_config_local(workspace, [(f"{section}.{option}", value) for section, option, value in settings])
    else:  # the same file, written without two more DVC start-ups
        text = "".join(f"[{section}]\n    {option} = {value}\n" for section, option, value in settings)
        (workspace / ".dvc" / "config.local").write_text(text)
    if params != read_params(project):
        (workspace / PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False))


def lock_outputs(workspace: Path, stage: str | None = None) -> list[str]:
    """Every output path recorded in ``workspace/dvc.lock`` (relative, in stage order), or only
    ``stage``'s."""
    lock_file = workspace / LOCK_FILE
    if not lock_file.exists():
        return []
    stages = (yaml.safe_load(lock_file.read_text()) or {}).get("stages") or {}
    chosen = [stages.get(stage) or {}] if stage else stages.values()
    return [out["path"] for entry in chosen for out in entry.get("outs", [])]
