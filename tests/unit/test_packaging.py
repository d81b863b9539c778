"""The package metadata builds without warnings (issue 23: every install printed setuptools'
"`project.license` as a TOML table is deprecated" twice), and the pinned package set matches it."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_metadata_applies_without_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)  # the package finder and readme are relative to the project
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "Apache-2.0"


def test_the_lock_pins_every_direct_dependency_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    lines = [
        line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and line[0] != "#"
    ]
    pinned = {}
    for line in lines:
        name, sep, version = line.partition("==")
        assert sep and version, f"requirements.lock: {line!r} is not name==version"
        pinned[name.lower().replace("_", "-")] = version

    from packaging.requirements import Requirement

    for spec in wanted:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pinned, f"requirements.lock lacks {name}"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            name,
            pinned[name],
            str(req.specifier),
        )
