"""Reading append-only JSON Lines files (the scores log, the reviewers' verdicts) field by field,
and the time stamp their rows are written with (:func:`utc_now`).

One reader per file validates every field of every row; whatever is wrong becomes an error of the
caller's class naming ``file:line`` and the field: bytes that are not UTF-8, a line longer than
:data:`MAX_LINE`, JSON that is not an object, a number that is not finite (or has 400 digits),
text that is not text or too long, a time that is not an ISO 8601 instant with a zone, or one
later than now plus :data:`CLOCK_SKEW` (one host with a wrong clock would otherwise own every
"latest rows" window). Times are compared as instants, never as strings.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from diffad.core.errors import DiffadError

MAX_LINE = 1 << 16  # bytes: a row is a few hundred; anything larger is not one of ours
MAX_TEXT = 4096  # characters of one text field (a path, a name)
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of this host's clock a writer's may run


def utc_now() -> str:
    """This instant as the rows write it: UTC ISO 8601 to the microsecond, ending in ``Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def read_rows(path: Path, error: type[DiffadError], *, partial_last: bool) -> Iterator[tuple[str, dict]]:
    """``(where, row)`` for every non-blank line of ``path`` (``where`` = ``file:line``).

    ``partial_last``: a last line without its newline is a write cut by a crash; True skips it
    (never a whole row), False refuses it.
    """
    with open(path, "rb") as handle:
        number = 0
        while True:
            line = handle.readline(MAX_LINE + 1)
            if not line:
                return
            number += 1
            where = f"{path}:{number}"
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                raise error(f"{where}: longer than {MAX_LINE} bytes; not a row of this file")
            if not line.strip():
                continue
            if not line.endswith(b"\n"):
                if partial_last:
                    return
                raise error(f"{where}: the last row is incomplete (no newline)")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(f"{where}: not UTF-8 (byte {exc.start + 1})") from None
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise error(f"{where}: not valid JSON ({exc.msg})") from None
            except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
                raise error(f"{where}: not a readable JSON row ({str(exc)[:80]})") from None
            if not isinstance(raw, dict):
                raise error(f"{where}: a row must be a JSON object")
            yield where, raw


def text(
    raw: dict,
    key: str,
    where: str,
    error: type[DiffadError],
    *,
    optional: bool = False,
    pattern: str | None = None,
) -> str | None:
    """``raw[key]`` as non-empty text without control characters, at most :data:`MAX_TEXT` long."""
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise error(f"{where}: {key} must be non-empty text{' or null' * optional}, got {_show(value)}")
    if len(value) > MAX_TEXT or any(ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in value):
        raise error(
            f"{where}: {key} is longer than {MAX_TEXT} characters or holds control / surrogate characters"
        )
    if pattern is not None and not re.fullmatch(pattern, value):
        raise error(f"{where}: {key} {_show(value)} is not of the form {pattern}")
    return value


def number(
    raw: dict,
    key: str,
    where: str,
    error: type[DiffadError],
    *,
    optional: bool = False,
    low: float = -math.inf,
    high: float = math.inf,
) -> float | None:
    """``raw[key]`` as a finite float in ``[low, high]`` (bools and text refused)."""
    value = raw.get(key)
    if value is None and optional:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        result = float(value) if ok else math.nan
    except OverflowError:  # an integer too large for a float
        result = math.nan
    if not math.isfinite(result) or not low <= result <= high:
        bounds = "" if (low, high) == (-math.inf, math.inf) else f" in [{low:g}, {high:g}]"
        raise error(
            f"{where}: {key} must be a finite number{bounds}{' or null' * optional}, got {_show(value)}"
        )
    return result


def boolean(raw: dict, key: str, where: str, error: type[DiffadError]) -> bool:
    value = raw.get(key)
    if not isinstance(value, bool):
        raise error(f"{where}: {key} must be true or false, got {_show(value)}")
    return value


def instant(
    raw: dict, key: str, where: str, error: type[DiffadError], now: datetime | None = None
) -> datetime:
    """``raw[key]``, an ISO 8601 time with a zone, as an aware UTC datetime; refused when later
    than ``now`` (default: this host's clock) plus :data:`CLOCK_SKEW`."""
    value = text(raw, key, where, error)
    stamp = parse_instant(value)
    if stamp is None:
        raise error(f"{where}: {key} {_show(value)} is not an ISO 8601 time with a zone (e.g. ...T12:00:00Z)")
    now = datetime.now(UTC) if now is None else now
    if stamp > now + CLOCK_SKEW:
        raise error(f"{where}: {key} {value} is in the future (this host's clock: {now:%Y-%m-%dT%H:%M:%SZ})")
    return stamp


def parse_instant(value: str) -> datetime | None:
    """An ISO 8601 time with a zone as aware UTC, else None (no zone, not a time)."""
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        return None
    return stamp.astimezone(UTC)


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
