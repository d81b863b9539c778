"""The graph tells the truth: every project module a stage can run is among that stage's deps.

Each stage's command names its script (``python stages/<stage>.py ...``); the project modules it
can run are the transitive closure of the ``import`` statements in that script and the modules it
reaches (function-level imports included, since they run too), together with the packages'
``__init__`` files. A module missing from dvc.yaml's deps means a change to it re-runs nothing and
the stage's outputs go stale without a word.

One import is by name, not by statement: the detector registry (``diffad/detectors/base.py``)
imports a method's module when it is asked for it, so a stage that reaches the registry can run
every module of ``diffad/detectors`` (a new method is one new file there, and must re-run it).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"diffad": ROOT / "src", "stages": ROOT}  # top-level package -> the folder it is in
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
DETECTORS = ROOT / "src/diffad/detectors"
# file -> the files it imports by name (importlib), not by an import statement
IMPORTS_BY_NAME = {DETECTORS / "base.py": sorted(DETECTORS.glob("*.py"))}


def module_file(name: str) -> Path | None:
    """``diffad.data.images`` -> src/diffad/data/images.py (or its package's __init__.py)."""
    top = name.split(".")[0]
    if top not in PROJECT_PACKAGES:
        return None
    base = PROJECT_PACKAGES[top].joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    for top, folder in PROJECT_PACKAGES.items():
        if path.is_relative_to(folder / top):
            parts = path.relative_to(folder).with_suffix("").parts
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement anywhere in ``path`` names (absolute or relative)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


def project_files(script: Path) -> set[Path]:
    """``script`` and every project file importing it can run."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [p for p in IMPORTS_BY_NAME.get(path, []) if p not in seen]
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def stage_script(stage: str) -> Path:
    return ROOT / re.search(r"python (stages/\S+\.py)", STAGES[stage]["cmd"]).group(1)


def uncovered(stage: str, deps: list[str] | None = None) -> list[str]:
    """The project files ``stage`` can run that ``deps`` (default: its deps in dvc.yaml) miss."""
    if deps is None:
        deps = [str(d).rstrip("/") for d in STAGES[stage].get("deps", [])]
    missing = []
    for path in sorted(project_files(stage_script(stage))):
        rel = path.relative_to(ROOT).as_posix()
        if not any(rel == d or rel.startswith(d + "/") for d in deps):
            missing.append(rel)
    return missing


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_cover_every_project_module_the_stage_runs(stage: str) -> None:
    missing = uncovered(stage)
    assert not missing, f"dvc.yaml: stage {stage}'s deps do not cover {missing}"


def test_the_import_walk_finds_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The walk itself: the evaluate stage reaches the DDIM detector only through the models it
    builds, and the denoiser's checkpoint module only through a function-level import."""
    files = {p.relative_to(ROOT).as_posix() for p in project_files(ROOT / "stages/evaluate.py")}
    assert {"src/diffad/diffusion/detector.py", "src/diffad/config.py", "stages/_stage.py"} <= files
    assert "src/diffad/diffusion/__init__.py" in files and "src/diffad/__init__.py" in files


def test_only_the_detector_registry_imports_project_modules_by_name() -> None:
    """The rule above is complete: no other library module calls importlib on a module name."""
    by_name = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "src/diffad").rglob("*.py")
        if "import_module(" in path.read_text()
    }
    # cli.py dispatches `diffad <command>` to a stage script by name: the console script, which
    # no stage runs (a stage only uses its error handling)
    assert by_name <= {p.relative_to(ROOT).as_posix() for p in IMPORTS_BY_NAME} | {"src/diffad/cli.py"}


def test_a_stage_that_reaches_the_registry_reaches_every_detector() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in project_files(ROOT / "stages/evaluate.py")}
    assert {p.relative_to(ROOT).as_posix() for p in DETECTORS.glob("*.py")} <= files
    assert "src/diffad/detectors/patchcore.py" not in {
        p.relative_to(ROOT).as_posix() for p in project_files(ROOT / "stages/convert_dataset.py")
    }


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_that_loads_detectors_by_name_lists_their_folder(stage: str) -> None:
    """Listed file by file, a new method's module would be in no stage's deps: the folder is."""
    if DETECTORS / "base.py" in project_files(stage_script(stage)):
        assert "src/diffad/detectors" in [str(d).rstrip("/") for d in STAGES[stage]["deps"]]
