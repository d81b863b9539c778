"""The ``diffad`` console script: every DVC stage as a subcommand, plus ``predict`` and ``dashboard``.

``diffad train-denoiser --params params.yaml -S train_denoiser.steps=100`` runs ``stages/train_denoiser.py``,
the same thin script DVC runs, so a stage behaves identically inside and outside DVC.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from diffad.core.command import run_command
from diffad.core.errors import DiffadError

STAGES = ("convert_dataset", "train_denoiser", "score_norms", "fit", "evaluate")
COMMANDS = {name.replace("_", "-"): f"stages.{name}" for name in STAGES}
COMMANDS["predict"] = "diffad.inference.predict"
COMMANDS["params"] = "diffad.cli"  # handled by params() below
COMMANDS["dashboard"] = "diffad.cli"  # handled by dashboard() below

WHAT = {  # one line each for `diffad --help` (the stages in pipeline order; `dvc repro` runs them all)
    "convert-dataset": "check the raw data (validation gate) and prepare it: data/prepared",
    "train-denoiser": "train the pixel denoiser on good images: models/denoiser",
    "score-norms": "score norms of every image at every noise level: data/score_norms",
    "fit": "fit one method (--method NAME) on good images or their score norms: models/methods/NAME",
    "evaluate": "score the test images with every method: reports/, metrics/, models/bundle",
    "predict": "score new images with the model bundle: heatmaps and a CSV",
    "params": "print params.yaml with every default (diffad params > params.yaml)",
    "dashboard": "review metrics, heatmaps and verdicts in the browser (Streamlit)",
}
USAGE = "usage: diffad COMMAND [options]   (diffad COMMAND --help for its options)\n\ncommands:\n" + "".join(
    f"  {name:<16} {WHAT[name]}\n" for name in COMMANDS
)
DASHBOARD_USAGE = """usage: diffad dashboard [STREAMLIT OPTION ...]

Start the review dashboard on http://127.0.0.1:8501 (Streamlit, headless, no usage statistics).
Run it in the project root: it reads reports/, models/bundle, runs/ and data/feedback there.

Any option is passed on to `streamlit run`, e.g.
  diffad dashboard --server.port 8502        another port
  diffad dashboard --server.address 0.0.0.0  reachable from other machines (no authentication!)
`python -m streamlit run --help` lists every Streamlit option.
"""


def dashboard(argv: Sequence[str] | None = None) -> None:
    """Start the Streamlit review dashboard on 127.0.0.1 (extra arguments go to streamlit)."""
    if any(arg in ("-h", "--help") for arg in argv or []):
        print(DASHBOARD_USAGE, end="")
        raise SystemExit(0)
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


def params(argv: Sequence[str] | None = None) -> None:
    """Print params.yaml with every default and its description (the settings beside the code)."""
    if argv:
        print("usage: diffad params > params.yaml   (every default, each key described)")
        raise SystemExit(0 if argv[0] in ("-h", "--help") else 2)
    from diffad.config import default_params_yaml

    print(default_params_yaml(), end="")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"diffad: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    local = {"dashboard": dashboard, "params": params}
    entry = local.get(command) or importlib.import_module(COMMANDS[command]).main
    sys.argv[0] = f"diffad {command}"  # argparse's prog: `usage: diffad evaluate [-h] ...`
    run_command(entry, rest)


if __name__ == "__main__":
    main()
