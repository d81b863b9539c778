"""One schema reader per log and verdict file (issue 21, cases 4, 5, 10): every field checked,
times compared as instants and never later than now, each failure one ``file:line: what`` error.

The rows are written by the producers (``log_predictions`` as `diffad predict` calls it, the
dashboard's ``FeedbackStore``), then one field is changed the way a bad host or a hand edit would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from diffad.core.errors import DataError
from diffad.feedback.dataset import FeedbackInput
from diffad.feedback.store import FeedbackStore
from diffad.feedback.validation import AMBIGUOUS, feedback_frame
from diffad.feedback.verdicts import FeedbackError, read_verdicts
from diffad.inference.scores_log import log_predictions, read_scores_log
from diffad.monitoring.drift import recent_window
from tests.faults.conftest import noise, save

BUNDLE = "0123456789abcdef"


def _log(tmp_path: Path, n: int = 3, time: str | None = None) -> Path:
    """A scores log of ``n`` rows as `diffad predict` appends them."""
    images = [save(noise(i, (8, 8)), tmp_path / "in" / f"{i:03d}.png") for i in range(n)]
    table = pd.DataFrame(
        {
            "path": [str(p) for p in images],
            "method": "padim",
            "score": [1.0 + i for i in range(n)],
            "norm_score": [50.0 + i for i in range(n)],
            "anomalous": [False] * n,
            "percentile": [10.0] * n,
            "heatmap": "",
        }
    )
    path = tmp_path / "log" / "scores.jsonl"
    now = time or datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    log_predictions(path, table, category="tiny", bundle=BUNDLE, threshold=2.5, time=now)
    return path


def _edit_line(path: Path, line: int, edit) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = edit(lines[line - 1])
    path.write_bytes(b"".join(lines))


def _set(key, value):
    def edit(line: bytes) -> bytes:
        raw = json.loads(line)
        raw[key] = value
        return (json.dumps(raw) + "\n").encode()

    return edit


def _raw_number(key: str, digits: str):
    def edit(line: bytes) -> bytes:
        raw = json.loads(line)
        raw[key] = 0
        text = json.dumps(raw).replace(f'"{key}": 0', f'"{key}": {digits}')
        return (text + "\n").encode()

    return edit


@pytest.mark.parametrize(
    "edit,named",
    [
        (_set("time", "yesterday"), "time"),
        (_set("time", "2026-01-01T10:00:00"), "time"),  # no zone: not an instant
        (_set("norm_score", "abc"), "norm_score"),
        (_set("anomalous", "no"), "anomalous"),
        (_set("norm_score", float("nan")), "norm_score"),
        (_set("percentile", float("inf")), "percentile"),
        (_set("percentile", 140.0), "percentile"),
        (_set("bundle_id", ["x"]), "bundle_id"),
        (_set("image", "a" * 100_000), "longer"),
        (_raw_number("score", "9" * 400), "score"),
        (lambda line: line.replace(b'"tiny"', b'"ti\xffny"'), "not UTF-8"),
        (lambda line: line.replace(b'"padim"', b'"pad\x00im"'), "JSON"),
    ],
)
def test_a_bad_scores_log_field_is_one_error_naming_file_line_and_field(tmp_path, edit, named):
    path = _log(tmp_path)
    _edit_line(path, 2, edit)
    with pytest.raises(DataError) as info:
        read_scores_log(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ") and named in message and "\n" not in message


def test_future_rows_cannot_take_over_the_monitoring_window(tmp_path):
    """200 rows from a host whose clock says 2099, then 200 real ones: refused, naming the line,
    instead of a window of 2099 rows that never moves (RETRAIN on every run)."""
    path = _log(tmp_path / "a", n=200, time="2099-01-01T00:00:00Z")
    real = _log(tmp_path / "b", n=200)
    with open(path, "ab") as handle:
        handle.write(real.read_bytes())
    with pytest.raises(DataError, match=rf"^{path}:1: time 2099-01-01T00:00:00Z is in the future"):
        read_scores_log(path)
    window = recent_window(read_scores_log(real), BUNDLE, "padim", 50)
    assert len(window) == 50


def _verdicts(tmp_path: Path, times: list[str]) -> Path:
    store = FeedbackStore(tmp_path / "fb")
    image = save(noise(5, (8, 8)), tmp_path / "seen.png")
    for verdict in ("good", "unsure")[: len(times)]:
        store.record("c", reviewer="ana", verdict=verdict, image=image)
    path = tmp_path / "fb" / "c.jsonl"
    for line, time in enumerate(times, start=1):
        _edit_line(path, line, _set("time", time))
    return path


@pytest.mark.parametrize(
    "edit,named",
    [
        (lambda line: line.replace(b'"ana"', b'"an\xffa"'), "not UTF-8"),
        (lambda line: line.replace(b'"ana"', b'"an\x00a"'), "JSON"),
        (_set("reviewer", "an\u0000a"), "reviewer"),
        (_set("time", "2099-01-01T00:00:00Z"), "in the future"),
        (_raw_number("score", "9" * 400), "score"),
    ],
)
def test_a_bad_verdict_row_is_one_error_naming_file_and_line(tmp_path, edit, named):
    path = _verdicts(tmp_path, ["2026-01-01T15:20:00Z"])
    _edit_line(path, 1, edit)
    with pytest.raises(FeedbackError) as info:
        read_verdicts(path)
    message = str(info.value)
    assert message.startswith(f"{path}:1: ") and named in message


@pytest.mark.parametrize(
    "times,out_of_order",
    [
        (["2026-01-01T15:20:00Z", "2026-01-01T15:20:00.500000Z"], False),  # later by half a second
        (["2026-01-01T15:20:00.500000Z", "2026-01-01T15:20:00Z"], True),  # the superseding row is earlier
    ],
)
def test_latest_row_wins_compares_instants_not_strings(tmp_path, times, out_of_order):
    path = _verdicts(tmp_path, times)
    rows = read_verdicts(path)
    feedback = FeedbackInput(path.parent, "c")
    frame = feedback_frame(feedback, rows, pd.DataFrame(), tmp_path)
    assert (frame[AMBIGUOUS].iloc[0] is not None) == out_of_order
