"""Saving a value into params.yaml: a line edit that keeps every comment, checked before writing;
it keeps the file's mode, writes through a symlinked params.yaml, and refuses a file changed on
disk since the page read it or one it may not write (issue 21, case 8)."""

import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from dashboard.params_file import fingerprint, set_params
from diffad.config import load_params

ROOT = Path(__file__).resolve().parents[2]
SAVE = {"evaluate.threshold_policy": "fixed_score", "evaluate.fixed_score": 123.25}


@pytest.fixture
def params(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy2(ROOT / "params.yaml", path)
    return path


def test_only_the_named_values_change_and_comments_stay(params):
    before = params.read_text()
    set_params(params, {"evaluate.threshold_policy": "fixed_score", "evaluate.fixed_score": 123.25})
    after = params.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert [b.split(":")[0].strip() for _, b in changed] == ["threshold_policy", "fixed_score"]
    assert all(a.split("#", 1)[1] == b.split("#", 1)[1] for a, b in changed)
    assert all(a.index("#") == b.index("#") for a, b in changed)  # the comment column too
    loaded = load_params(params).evaluate
    assert (loaded.threshold_policy, loaded.fixed_score) == ("fixed_score", 123.25)
    assert load_params(params).ddim == load_params(ROOT / "params.yaml").ddim  # nested kept


def test_a_missing_key_is_added_to_its_section(params):
    text = "\n".join(line for line in params.read_text().splitlines() if "target_miss_rate" not in line)
    params.write_text(text + "\n")
    set_params(params, {"evaluate.target_miss_rate": 0.1})
    assert yaml.safe_load(params.read_text())["evaluate"]["target_miss_rate"] == 0.1
    assert load_params(params).evaluate.target_miss_rate == 0.1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"evaluate.target_false_alarm_rate": 0.9}, "evaluate.target_false_alarm_rate"),
        ({"evaluate.threshold_policy": "best_f1_on_test"}, "evaluate.threshold_policy"),
        ({"nosuch.key": 1}, "nosuch"),
    ],
)
def test_a_rejected_value_leaves_the_file_byte_identical(params, values, message):
    before = params.read_bytes()
    with pytest.raises(ValueError, match=message):
        set_params(params, values)
    assert params.read_bytes() == before
    assert [p.name for p in params.parent.iterdir()] == ["params.yaml"]


def test_saving_keeps_the_files_mode(params):
    os.chmod(params, 0o664)  # group-writable: the team edits it
    set_params(params, SAVE)
    assert stat.S_IMODE(params.stat().st_mode) == 0o664
    assert load_params(params).evaluate.fixed_score == 123.25


def test_a_symlinked_params_yaml_is_written_through_and_stays_a_link(params, tmp_path):
    link_dir = tmp_path / "checkout"
    link_dir.mkdir()
    link = link_dir / "params.yaml"
    link.symlink_to(params)
    set_params(link, SAVE)
    assert link.is_symlink() and link.resolve() == params
    assert load_params(params).evaluate.fixed_score == 123.25


def test_a_file_edited_on_disk_since_the_page_read_it_is_not_overwritten(params):
    loaded = fingerprint(params.read_text())
    params.write_text(params.read_text() + "# a colleague's edit\n")
    before = params.read_bytes()
    with pytest.raises(ValueError, match=f"{params}: changed on disk since this page read it"):
        set_params(params, SAVE, loaded=loaded)
    assert params.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any file")
def test_a_file_this_user_may_not_write_is_refused(params):
    os.chmod(params, 0o444)
    before = params.read_bytes()
    with pytest.raises(ValueError, match="not writable"):
        set_params(params, SAVE)
    assert params.read_bytes() == before
