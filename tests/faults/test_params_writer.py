"""The dashboard's params.yaml writer (issue 21, case 8): keeps the file's mode, writes through a
symlinked params.yaml, refuses a file changed on disk since the page read it, and one it may not
write; a refusal leaves the file byte-identical."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from dashboard.params_file import fingerprint, set_params
from diffad.config import load_params

ROOT = Path(__file__).resolve().parents[2]
SAVE = {"evaluate.threshold_policy": "fixed_score", "evaluate.fixed_score": 123.25}


@pytest.fixture
def params(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy2(ROOT / "params.yaml", path)
    return path


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
