"""The DVC stages: one thin script per stage, named like the stage and its params section.

Each stage script imports this package first, before its slow imports (torch takes seconds), so
a stage run as a script dies with the process that started it from its first instructions: a
``dvc repro`` killed while the stage is still importing leaves no orphan that would later
overwrite outputs DVC has meanwhile restored from its cache.
"""

import os
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


SHELLS = {"sh", "dash", "bash", "zsh", "ksh", "fish"}  # DVC runs a stage as `$SHELL -c <cmd>`


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (Linux; elsewhere a no-op), and
    stop now if the parent already died: under DVC (``DVC_STAGE`` set) a parent of pid 1 means
    ``dvc`` is gone and the stage was re-parented to init.

    A shell that does not ``exec`` its last command (dash, DVC's ``$SHELL`` when unset) sits
    between ``dvc`` and the stage and outlives ``dvc``; a daemon thread then watches the shell's
    own parent and ends the stage when that changes."""
    import ctypes
    import ctypes.util
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    under_dvc = os.environ.get("DVC_STAGE") is not None
    grandparent = _parent_of(parent) if under_dvc and _name_of(parent) in SHELLS else None
    orphaned = under_dvc and (parent == 1 or grandparent == 1)
    if orphaned or os.getppid() != parent:  # died before, or while, the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    if grandparent is not None:
        import threading

        threading.Thread(target=_watch, args=(parent, grandparent), daemon=True, name="die-with-dvc").start()


def _watch(shell: int, dvc: int) -> None:
    import signal
    import time

    while _parent_of(shell) == dvc and os.getppid() == shell:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)


def _stat(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return []
    return text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else None


def _name_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _run_as_stage_script() -> bool:
    main = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return os.path.basename(os.path.dirname(os.path.abspath(main))) == "stages"


if _run_as_stage_script():  # not when a test or the CLI imports a stage module
    die_with_parent()
