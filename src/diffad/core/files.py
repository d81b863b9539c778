"""Atomic file writing with ordinary permissions, whole-line appends, and a lock that dies with its owner.

``tempfile.mkstemp`` creates files with mode 0600; renamed into place they would keep it, and
weights or heatmaps saved that way are unreadable to the rest of a team sharing the folder.
Files written here get the mode a plain ``open(path, "w")`` would give: 0666 minus the umask.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from diffad.core.errors import DiffadError

if TYPE_CHECKING:
    import torch


def sha256_of(source: Path | int) -> str:
    """Hex sha256 of a file's bytes: a path, or an open descriptor (read from its start, left there)."""
    digest = hashlib.sha256()
    if isinstance(source, int):
        handle = os.fdopen(os.dup(source), "rb")
        handle.seek(0)
    else:
        handle = open(source, "rb")  # noqa: SIM115 - closed below
    with handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if isinstance(source, int):
        os.lseek(source, 0, os.SEEK_SET)
    return digest.hexdigest()


def safe_name(path: Path | str) -> str:
    """``path`` as text any UTF-8 writer accepts: a file name that is not valid UTF-8 keeps its
    odd bytes as ``\\xNN`` escapes instead of stopping a run at the first CSV, JSON or print."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def umask() -> int:
    """The process umask, read without changing it (``os.umask`` is process-wide)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_mode() -> int:
    """0666 minus the process umask: the mode of a plain ``open(path, "w")``."""
    return 0o666 & ~umask()


def atomic_write(path: Path, write: Callable[[Path], None], mode: int | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    Readers see either the old file or the complete new one, never a partial write; a symbolic
    link at ``path`` is replaced, not written through. The new file gets ``mode`` (default: the
    mode of a plain ``open(path, "w")``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, normal_mode() if mode is None else mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Path:
    """Write ``tensors`` and ``metadata`` as a safetensors file whose bytes depend on nothing else.

    ``safetensors`` keeps the metadata in a Rust ``HashMap``, so with more than one key the header's
    key order (and the file's hash in ``dvc.lock``) changes from run to run. The header is rewritten
    here with sorted keys; the tensor data, and what any safetensors reader loads, are unchanged.
    """
    from safetensors.torch import save

    blob = save(dict(tensors), metadata=dict(metadata))
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8 bytes, as safetensors does
    data = len(header).to_bytes(8, "little") + header + blob[8 + size :]
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (holding the owner's pid) or raise naming the owner.

    The kernel releases the lock when its process dies, even by ``kill -9``, so a stale file
    never blocks the next run; its content only names who holds it, and is emptied on release
    (the file may sit in a DVC output, whose hash must not depend on a pid).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole block
    held = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown pid"
            raise DiffadError(
                f"{path}: another {what} ({owner}) is writing to {path.parent}; wait for it or stop it"
            ) from None
        held = True
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        if held:
            handle.truncate(0)
        handle.close()


def append_whole(path: Path, data: bytes, error: type[DiffadError] = DiffadError) -> None:
    """Append ``data`` (whole lines) to ``path`` in one ``write`` on an ``O_APPEND`` descriptor
    under an exclusive ``flock``, then ``fsync``: concurrent writers never interleave partial
    lines. A file whose last line lost its newline is refused, so nothing is glued onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, normal_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            raise error(f"{path}: does not end with a newline (a truncated row); fix it first")
        written = os.write(fd, data)
        if written != len(data):  # pragma: no cover - regular files take the whole write
            raise error(f"{path}: short write ({written} of {len(data)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


# ------------------------------------------------------------------ versioned folders

CURRENT = "CURRENT"  # the pointer file of a versioned folder: the name of the version served
_VERSION = re.compile(r"v-[0-9a-f]{8,64}")


def current_version(root: Path) -> Path:
    """The folder ``root`` serves now: ``root/<name in root/CURRENT>``, or ``root`` itself when it
    has no pointer (a plain folder). The pointer must name a version folder directly inside
    ``root``; anything else (``..``, a path, a link out of ``root``) is refused."""
    root = Path(root)
    try:
        name = (root / CURRENT).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return root
    except (OSError, UnicodeDecodeError) as exc:
        raise DiffadError(f"{root / CURRENT}: unreadable version pointer ({exc})") from None
    folder = root / name
    if not _VERSION.fullmatch(name) or folder.is_symlink() or not folder.is_dir():
        raise DiffadError(f"{root / CURRENT}: {name[:80]!r} is not a version folder of {root}")
    return folder


def publish_version(root: Path, build: Callable[[Path], str], keep: int = 2) -> Path:
    """Publish a new version of the folder ``root`` in one atomic step; return its folder.

    ``build(staging)`` fills a fresh staging folder inside ``root`` and returns the version's id
    (hex digits, e.g. a content hash); the folder is renamed to ``v-<id>`` and the pointer
    ``root/CURRENT`` is replaced by one rename, so a reader sees the old version or the new one,
    never a mix and never none. Versions are never changed once published; the ``keep`` newest
    stay (a reader that resolved an older one keeps what it opened), older ones are removed.
    A plain folder at ``root`` (no pointer yet) has its files moved aside only after the new
    version is served.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=root))
    try:
        os.chmod(staging, 0o777 & ~umask())  # mkdtemp's 0700 would hide the version from the team
        version = build(staging)
        name = f"v-{version}"
        if not _VERSION.fullmatch(name):
            raise DiffadError(f"{root}: version id {version!r} is not 8-64 hex digits")
        folder = root / name
        if folder.is_dir():  # the same content, published before: serve that copy
            shutil.rmtree(staging)
        else:
            os.rename(staging, folder)
        os.utime(folder)  # the newest version: pruning keeps by time of publishing
        _fsync_dir(root)
        atomic_write(root / CURRENT, lambda tmp: tmp.write_text(name + "\n", encoding="ascii"))
        _fsync_dir(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(root, folder, keep)
    return folder


def _prune(root: Path, served: Path, keep: int) -> None:
    """Remove the versions (and files of a former plain folder) beyond the ``keep`` newest."""
    versions = sorted(
        (p for p in root.iterdir() if _VERSION.fullmatch(p.name) and p.is_dir() and p != served),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    for old in versions[max(keep - 1, 0) :]:
        shutil.rmtree(old, ignore_errors=True)
    for entry in root.iterdir():  # a plain folder's files, now served from a version
        if entry.name != CURRENT and not _VERSION.fullmatch(entry.name) and not entry.name.startswith("."):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
