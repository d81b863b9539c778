"""Staging workspaces: content hashes, parameter overrides, and a copy that shares the DVC cache."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.dvc_cli import dvc_environment
from flows.workspace import (
    apply_overrides,
    category_overrides,
    create_workspace,
    read_params,
    tree_hash,
)


def _tree(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_tree_hash_depends_on_names_and_bytes_only(tmp_path):
    files = {"a.csv": b"1,2\n", "sub/b.png": b"\x89PNG"}
    one, two = _tree(tmp_path / "one", files), _tree(tmp_path / "two", files)
    os.utime(two / "a.csv", (0, 0))
    assert tree_hash(one) == tree_hash(two)
    (two / "a.csv").write_bytes(b"1,3\n")
    assert tree_hash(one) != tree_hash(two)
    renamed = _tree(tmp_path / "three", {"a2.csv": b"1,2\n", "sub/b.png": b"\x89PNG"})
    assert tree_hash(one) != tree_hash(renamed)
    assert tree_hash(tmp_path / "missing") == tree_hash(_tree(tmp_path / "empty", {}))


def test_overrides_are_applied_to_a_copy_and_keep_strings_strings():
    params = {"data": {"category": "fabric", "path": "data/raw"}, "train": {"steps": 10}}
    result = apply_overrides(params, [*category_overrides("007", None, "/mnt/x"), "train.steps=20"])
    assert result == {"data": {"category": "007", "path": "/mnt/x"}, "train": {"steps": 20}}
    assert params["data"]["category"] == "fabric"  # the input is untouched
    assert category_overrides(None, None, None) == []


def test_workspace_is_a_cache_sharing_copy_that_leaves_the_project_alone(tiny_project, tmp_path):
    (tiny_project / "runs" / "alpha").mkdir(parents=True)
    (tiny_project / "runs" / "alpha" / "note.json").write_text("{}")
    (tiny_project / "scratch.txt").write_text("untracked but not ignored")
    before = {p: p.read_bytes() for p in tiny_project.rglob("*") if p.is_file() and ".git" not in p.parts}
    params = apply_overrides(read_params(tiny_project), category_overrides("beta", None, "data/raw_beta"))
    ws = tmp_path / "ws"

    create_workspace(tiny_project, ws, params, "data/raw_beta")

    assert (ws / "stages" / "train.py").exists() and (ws / "scratch.txt").exists()
    assert (ws / "data" / "raw_beta" / "part1.csv").exists()
    assert not (ws / "runs").exists() and not (ws / ".git").exists()
    assert yaml.safe_load((ws / "params.yaml").read_text())["data"] == {
        "category": "beta",
        "source": "csv",
        "path": "data/raw_beta",
    }
    local = configparser.ConfigParser()
    local.read(ws / ".dvc" / "config.local")
    assert local["core"]["no_scm"] == "true"
    assert Path(local["cache"]["dir"]).resolve() == (tiny_project / ".dvc" / "cache").resolve()
    after = {p: p.read_bytes() for p in tiny_project.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before

    # a stage run in the workspace lands in the project's cache
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "convert_dataset"],
        cwd=ws,
        capture_output=True,
        text=True,
        env=dvc_environment(),  # the stage's `python` is this environment's (it imports diffad)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert any((tiny_project / ".dvc" / "cache" / "files").rglob("*"))
    assert not (tiny_project / "data" / "prepared").exists()


def test_workspace_refuses_a_project_that_is_not_a_dvc_repo(tmp_path):
    from diffad.core.errors import DataError

    (tmp_path / "p").mkdir()
    with pytest.raises(DataError, match="not a DVC project"):
        create_workspace(tmp_path / "p", tmp_path / "ws", {}, None)


def test_promoted_outputs_that_git_does_not_ignore_stay_out_of_the_workspace(tiny_project, tmp_path):
    (tiny_project / ".gitignore").write_text("")  # nothing ignored any more
    (tiny_project / "models").mkdir()
    (tiny_project / "models" / "model.json").write_text("{}")
    (tiny_project / "dvc.lock").write_text(
        yaml.safe_dump({"schema": "2.0", "stages": {"train": {"outs": [{"path": "models/model.json"}]}}})
    )
    create_workspace(tiny_project, tmp_path / "ws", read_params(tiny_project), "data/raw")
    assert not (tmp_path / "ws" / "models" / "model.json").exists()
    assert (tmp_path / "ws" / "dvc.lock").exists()


def test_the_projects_local_dvc_config_is_kept_and_extended(tiny_project, tmp_path):
    (tiny_project / ".dvc" / "config.local").write_text("['remote \"private\"']\n    url = /secret/store\n")
    create_workspace(tiny_project, tmp_path / "ws", read_params(tiny_project), "data/raw")
    local = configparser.ConfigParser()
    local.read(tmp_path / "ws" / ".dvc" / "config.local")
    assert local["'remote \"private\"'"]["url"] == "/secret/store"
    assert local["core"]["no_scm"] == "true"
    assert Path(local["cache"]["dir"]).resolve() == (tiny_project / ".dvc" / "cache").resolve()
