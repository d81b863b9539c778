"""Running a command-line entry point: a user error is one clear line and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from diffad.core.errors import DiffadError


def run_command(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a command's ``main``; user errors print one clear line and exit 2, no traceback."""
    try:
        main(argv)
    except DiffadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
