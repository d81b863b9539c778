"""`diffad predict` never loses a run to a file name or a log (issue 21, case 9): a file name that
is not UTF-8, inputs that are not files, a scores log that cannot be written. Real bundle
(tests/faults/bundles.py), real command line."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from diffad import cli
from diffad.inference.predict_outputs import PREDICTIONS, SKIPPED
from diffad.inference.scores_log import read_scores_log
from tests.faults.conftest import noise, save


def _predict(inputs: list[Path], bundle: Path, out: Path, log: Path, *extra: str) -> None:
    args = ["predict", *map(str, inputs), "--bundle", str(bundle), "--method", "padim", "--out", str(out)]
    cli.main([*args, "--scores-log", str(log), "--threads", "1", *extra])


def test_a_file_name_that_is_not_utf8_does_not_lose_the_run(bundle, tmp_path, capsys):
    folder = tmp_path / "in"
    for i in range(4):
        save(noise(i, (16, 16)), folder / f"{i:03d}.png")
    odd = os.fsdecode(b"caf\xe9-latin1.png")  # a Latin-1 name from an old camera share
    save(noise(9, (16, 16)), folder / odd)
    out, log = tmp_path / "out", tmp_path / "log"
    _predict([folder], bundle, out, log)
    table = pd.read_csv(out / PREDICTIONS)
    assert len(table) == 5 and any("caf\\xe9-latin1.png" in p for p in table["path"])
    rows = read_scores_log(log / "tiny" / "scores.jsonl")
    assert len(rows) == 5
    assert "5 decisions appended" in capsys.readouterr().out


def test_inputs_that_are_not_files_are_counted_as_skipped_with_the_reason(bundle, tmp_path, capsys):
    folder = tmp_path / "in"
    save(noise(0, (16, 16)), folder / "real.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "gone.png").symlink_to(folder / "deleted.png")
    (folder / "folder.png").mkdir()
    out = tmp_path / "out"
    _predict([folder], bundle, out, tmp_path / "log")
    skipped = pd.read_csv(out / SKIPPED)
    reasons = {Path(p).name: e for p, e in zip(skipped["path"], skipped["error"], strict=True)}
    assert set(reasons) == {"pipe.png", "zero.png", "gone.png", "folder.png"}
    assert "FIFO" in reasons["pipe.png"] and "link to a device" in reasons["zero.png"]
    assert "dangling link" in reasons["gone.png"] and "folder" in reasons["folder.png"]
    assert len(pd.read_csv(out / PREDICTIONS)) == 1
    assert "4 skipped, not scored" in capsys.readouterr().out


def test_an_unwritable_scores_log_is_refused_before_any_image_is_scored(bundle, tmp_path, capsys):
    images = [save(noise(i, (16, 16)), tmp_path / "in" / f"{i}.png") for i in range(3)]
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log folder should be\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        _predict(images, bundle, out, blocker)
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert "scores log cannot be written" in err and "Traceback" not in err
    assert not out.exists()  # nothing scored, nothing to re-run with --force
