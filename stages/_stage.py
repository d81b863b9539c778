"""What every stage script shares: its command line, parameter loading and error handling.

A stage is run by DVC as ``python stages/<stage>.py --params params.yaml <paths from dvc.yaml>``
or by hand as ``diffad <stage-with-dashes> ... -S section.key=value``.
"""

from __future__ import annotations

from stages import die_with_parent

import argparse
import logging

from diffad.config import Params, load_params
from diffad.runtime import configure_threads, select_device

log = logging.getLogger("diffad")


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every stage takes: ``--params`` and ``-S``."""
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
        help="override a parameter, e.g. -S train_ddim.steps=100 (repeatable)",
    )
    return parser


def exit_with_parent() -> None:
    """Die with the parent process (:func:`stages.die_with_parent`); a stage script has done this
    at its first import already, ``diffad <stage>`` does it here.

    After ``kill -9`` of ``dvc repro`` its stage would otherwise run on, orphaned, and a new
    ``dvc repro`` would start a second trainer writing the same folder.
    """
    die_with_parent()


def load_stage_params(args: argparse.Namespace) -> Params:
    """Load the typed parameters once and set up logging and torch threads."""
    exit_with_parent()
    params = load_params(args.params, args.overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    threads = configure_threads(params.runtime.threads)
    log.info("parameters from %s, %d torch thread(s)", args.params, threads)
    return params


def stage_device(params: Params):
    """The torch device the stage computes on (``runtime.device``)."""
    return select_device(params.runtime.device)
