"""The ``dvc`` command line as seen from a flow: its stage graph, running a stage, failure classes.

DVC owns the stage graph. The flows never list stages: :func:`stage_graph` asks DVC
(``dvc dag --dot``, edges point from a stage to the stages that consume its outputs) and
:func:`stage_order` sorts that graph topologically, so a stage added to ``dvc.yaml`` is run by the
flows without any change here. DVC runs as a subprocess of the same interpreter
(``python -m dvc``), so nothing here imports DVC and a worker uses the DVC of its own environment.

A failed stage is classified once, here, so that Prefect's retry policy has one question to ask
(:func:`is_transient`):

=====================================  ==========================================================
transient (retried with back-off)      the stage exited with 75 (``EX_TEMPFAIL``), was killed by
                                       a signal (pre-empted, OOM-killed), or its output names a
                                       passing condition: CUDA out of memory / busy device, a
                                       network reset or time-out, DVC's repository lock
permanent (fails at once)              everything else, notably exit code 2 (a user error
                                       reported by ``diffad``) and a failed data validation
=====================================  ==========================================================
"""

from __future__ import annotations

import collections
import graphlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from diffad.core.quiet import quiet_environment

log = logging.getLogger("flows.dvc")

TAIL_LINES = 60  # lines of a failed command's output kept in the exception message
TEMPFAIL_EXIT_CODES = frozenset({75, 137, 143})  # EX_TEMPFAIL; SIGKILL / SIGTERM as seen through a shell
TRANSIENT_PATTERNS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"CUDA out of memory",
        r"CUDA error: (?:all CUDA-capable devices are busy|out of memory|unspecified launch failure)",
        r"Unable to acquire lock",  # another DVC process holds the repository lock
        r"Connection (?:reset|refused|aborted|timed out)",
        r"Connect call failed",  # asyncssh (DVC's SSH remote): connection refused
        r"Temporary failure in name resolution",
        r"Read timed out",
        r"Resource temporarily unavailable",
    )
)
_EXITED = re.compile(r"exited with (-?\d+)")  # DVC: "failed to run: <cmd>, exited with <code>"
_DOT_EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*->\s*"((?:[^"\\]|\\.)*)"')
_DOT_NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*;?\s*$')


class StageFailed(RuntimeError):
    """A ``dvc`` command failed; ``exit_code`` is the stage command's own code when DVC reports it."""

    def __init__(self, command: Sequence[str], returncode: int, output: str, cwd: Path) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.output = output
        match = _EXITED.findall(output)
        self.exit_code = int(match[-1]) if match else None
        self.cause = failure_cause(output)
        tail = "\n".join(output.splitlines()[-TAIL_LINES:])
        # the first line says why: it is what a run record keeps (flows.retrain)
        super().__init__(
            f"`dvc {' '.join(command)}` failed in {cwd} (dvc exit {returncode}, "
            f"stage exit {self.exit_code}): {self.cause}\n{tail}"
        )


_CAUSE = re.compile(r"^(error: \S.*|[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed)\b:? ?.*)$")
MAX_CAUSE = 300  # characters of the cause kept on the first line


def failure_cause(output: str) -> str:
    """The stage's own last error line in ``dvc`` output: a ``diffad`` one-line error
    (``error: ...``) or a traceback's last line (``ValueError: ...``); else the last line that
    is not DVC's own ``ERROR: failed to reproduce ...``."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    stage_lines = [line for line in lines if not line.startswith(("ERROR:", "WARNING:", "Running stage"))]
    found = next((line for line in reversed(stage_lines) if _CAUSE.match(line)), None)
    cause = found or (stage_lines[-1] if stage_lines else (lines[-1] if lines else "no output"))
    return cause if len(cause) <= MAX_CAUSE else cause[: MAX_CAUSE - 1] + "…"


class TransientStageError(StageFailed):
    """A failure worth retrying (see the module docstring for what counts as transient)."""


def classify_failure(command: Sequence[str], returncode: int, output: str, cwd: Path) -> StageFailed:
    """The exception for a failed ``dvc`` command: :class:`TransientStageError` or :class:`StageFailed`."""
    failure = StageFailed(command, returncode, output, cwd)
    killed = returncode < 0 or (failure.exit_code is not None and failure.exit_code < 0)
    if (
        killed
        or failure.exit_code in TEMPFAIL_EXIT_CODES
        or any(p.search(output) for p in TRANSIENT_PATTERNS)
    ):
        return TransientStageError(command, returncode, output, cwd)
    return failure


def is_transient(exc: BaseException | None) -> bool:
    """True for the failures the flows retry."""
    return isinstance(exc, TransientStageError)


def dvc_environment(base: Mapping[str, str] | None = None, project: Path | None = None) -> dict[str, str]:
    """Environment for DVC and the stage commands it starts.

    ``dvc.yaml`` commands call ``python``: put this interpreter's ``bin`` first on ``PATH`` so a
    stage runs in the same environment as the flow, whatever the worker's shell had. With
    ``project``, its own ``src/`` and root come first on ``PYTHONPATH``: a staging workspace runs
    the code of its snapshot, not the checkout the flow was started from (an editable install,
    or a ``PYTHONPATH`` naming it). Nothing phones home.
    """
    env = dict(os.environ if base is None else base)
    if project is not None:
        root = Path(project).resolve()
        own = [str(root / "src"), str(root)]
        env["PYTHONPATH"] = os.pathsep.join(
            [*own, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
        )
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return dict(quiet_environment(env))


def run_dvc(args: Sequence[str], cwd: Path, logger: logging.Logger | logging.LoggerAdapter = log) -> str:
    """Run ``dvc <args>`` in ``cwd``, streaming its output to ``logger``; return the whole output.

    Raises :class:`TransientStageError` or :class:`StageFailed` (see :func:`classify_failure`).
    """
    command = [sys.executable, "-m", "dvc", *args]
    lines: collections.deque[str] = collections.deque(maxlen=2000)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=dvc_environment(project=cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            logger.info("%s", lines[-1])
    output = "\n".join(lines)
    if proc.returncode != 0:
        raise classify_failure(args, proc.returncode, output, cwd)
    return output


def default_remote(project: Path) -> str | None:
    """The project's default DVC remote (``dvc remote default``, ``core.remote``), None if unset."""
    command = [sys.executable, "-m", "dvc", "remote", "default"]
    done = subprocess.run(command, cwd=project, env=dvc_environment(), capture_output=True, text=True)
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None


def parse_dot(dot: str) -> dict[str, set[str]]:
    """``dvc dag --dot`` output -> {stage: stages it depends on} (every node present)."""
    graph: dict[str, set[str]] = {}
    for line in dot.splitlines():
        if edge := _DOT_EDGE.match(line):
            upstream_stage, downstream_stage = (name.replace('\\"', '"') for name in edge.groups())
            graph.setdefault(upstream_stage, set())
            graph.setdefault(downstream_stage, set()).add(upstream_stage)
        elif node := _DOT_NODE.match(line):
            graph.setdefault(node.group(1).replace('\\"', '"'), set())
    return graph


def topological_order(graph: Mapping[str, set[str]]) -> list[str]:
    """Stages in an order where every stage follows all of its dependencies (ties: first seen first)."""
    return list(graphlib.TopologicalSorter(graph).static_order())


def ancestors(graph: Mapping[str, set[str]], stage: str) -> set[str]:
    """All stages ``stage`` depends on, directly or through others."""
    seen: set[str] = set()
    todo = list(graph.get(stage, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def stage_graph(project: Path) -> dict[str, set[str]]:
    """The pipeline's stage graph as DVC reports it for ``project``."""
    command = [sys.executable, "-m", "dvc", "dag", "--dot"]
    done = subprocess.run(
        command, cwd=project, env=dvc_environment(project=project), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise classify_failure(command[3:], done.returncode, done.stdout + done.stderr, project)
    return parse_dot(done.stdout)


def stage_order(project: Path) -> list[str]:
    """Every stage of ``project`` in DVC's dependency order."""
    return topological_order(stage_graph(project))
