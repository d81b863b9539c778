"""The ``diffad`` console script: every DVC stage as a subcommand, plus ``predict`` and ``dashboard``.

``diffad train-ddim --params params.yaml -S train_ddim.steps=100`` runs ``stages/train_ddim.py``,
the same thin script DVC runs, so a stage behaves identically inside and outside DVC.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from diffad.errors import DiffadError
from diffad.quiet import quiet_environment

STAGES = (
    "convert_dataset",
    "train_ddim",
    "cache_scores",
    "fit_gmm",
    "train_flow",
    "fit_baselines",
    "evaluate",
)
COMMANDS = {name.replace("_", "-"): f"stages.{name}" for name in STAGES}
COMMANDS["predict"] = "diffad.inference.predict"
COMMANDS["dashboard"] = "diffad.cli"  # handled by dashboard() below

USAGE = "usage: diffad COMMAND [options]   (diffad COMMAND --help for its options)\n\ncommands:\n" + "".join(
    f"  {name}\n" for name in COMMANDS
)


def run_command(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a command's ``main``; user errors print one clear line and exit 2, no traceback."""
    quiet_environment()
    try:
        main(argv)
    except DiffadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def dashboard(argv: Sequence[str] | None = None) -> None:
    """Start the Streamlit review dashboard on 127.0.0.1 (extra arguments go to streamlit)."""
    app = Path.cwd() / "dashboard" / "app.py"
    if not app.exists():
        raise DiffadError(f"{app}: not found; run `diffad dashboard` from the project root")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        *(argv or []),
    ]
    raise SystemExit(subprocess.call(cmd))


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"diffad: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    entry = dashboard if command == "dashboard" else importlib.import_module(COMMANDS[command]).main
    run_command(entry, rest)


if __name__ == "__main__":
    main()
