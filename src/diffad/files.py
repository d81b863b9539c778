"""Atomic file writing with ordinary permissions, whole-line appends, and a lock that dies with its owner.

``tempfile.mkstemp`` creates files with mode 0600; renamed into place they would keep it, and
weights or heatmaps saved that way are unreadable to the rest of a team sharing the folder.
Files written here get the mode a plain ``open(path, "w")`` would give: 0666 minus the umask.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from diffad.errors import DiffadError

if TYPE_CHECKING:
    import torch


def normal_mode() -> int:
    """0666 minus the process umask (read without changing it: ``os.umask`` is process-wide)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    Readers see either the old file or the complete new one, never a partial write; a symbolic
    link at ``path`` is replaced, not written through.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, normal_mode())
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
