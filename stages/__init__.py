"""The DVC stages: one thin script per stage, named like the stage, and what they share (below).

Each stage script imports this package first, before its slow imports (torch takes seconds), so
a stage run as a script dies with the process that started it from its first instructions: a
``dvc repro`` killed while the stage is still importing leaves no orphan that would later
overwrite outputs DVC has meanwhile restored from its cache.
"""

from __future__ import annotations

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


# What every stage script shares: its command line, parameter loading and device. A stage is run by
# DVC as ``python stages/<stage>.py --params params.yaml <paths from dvc.yaml>`` or by hand as
# ``diffad <stage-with-dashes> ... -S section.key=value``. Imports stay inside the functions: this
# module runs before the stage's slow imports.


def stage_parser(doc: str | None):
    """An argument parser with the options every stage takes: ``--params`` and ``-S``."""
    import argparse

    summary = (doc or "").strip().splitlines()[0] if doc else None
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. -S train_denoiser.steps=100 (repeatable)",
    )
    return parser


def add_denoiser_option(parser) -> None:
    """``--denoiser``: the pixel denoiser's weights (train_denoiser's output)."""
    from pathlib import Path

    parser.add_argument(
        "--denoiser",
        type=Path,
        default=Path("models/denoiser/denoiser.safetensors"),
        help="pixel denoiser weights",
    )


def load_stage_params(args):
    """Load the typed parameters once and set up logging and torch threads.

    Dies with the parent process first (:func:`die_with_parent`; a stage script has done so at its
    first import already, ``diffad <stage>`` does it here): after ``kill -9`` of ``dvc repro`` its
    stage would otherwise run on, orphaned, beside the next ``dvc repro``'s.
    """
    import logging

    from diffad.config import load_params
    from diffad.core.runtime import configure_threads

    die_with_parent()
    params = load_params(args.params, args.overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    threads = configure_threads(params.runtime.threads)
    logging.getLogger("diffad").info("parameters from %s, %d torch thread(s)", args.params, threads)
    return params


def stage_device(params):
    """The torch device the stage computes on (``runtime.device``)."""
    from diffad.core.runtime import select_device

    return select_device(params.runtime.device)
