"""The graph tells the truth: every project module a stage can run is inside that stage's deps.

Each stage's command names its script (``python stages/<stage>.py ...``); the project modules it
can run are the transitive closure of the ``import`` statements of that script and the modules it
reaches (function-level imports included, since they run too), with their packages' ``__init__``
files. A module outside dvc.yaml's deps means a change to it re-runs nothing and the stage's
outputs go stale without a word. Deps name folders (a method's folder, ``components``, ``data``),
so the check is "inside a dep", and a module added to a folder is covered without an edit.

Two walks stop early, on purpose:
* reading params.yaml (``diffad.config`` and the settings it composes) is no code dependency: DVC
  tracks the values themselves through each stage's ``params``;
* a package ``__init__`` holding only a docstring runs nothing and needs no dep.
One import is by name: the method registry (``components/methods.py``) imports a method's
``detector`` module when asked for it. ``fit@<method>`` asks for its own method only; any other
stage reaching the registry can run every method.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = {"diffad": ROOT / "src", "stages": ROOT}  # top-level package -> the folder it is in
METHODS = ROOT / "src/diffad/methods"
REGISTRY = ROOT / "src/diffad/components/methods.py"
PARAMS_READER = ROOT / "src/diffad/config.py"
MAX_DEPS = 8


def expanded_stages() -> dict[str, dict]:
    """dvc.yaml's stages with each ``foreach`` expanded to ``name@key`` (``${key}``, ``${item.x}``
    and ``${section.key}`` of params.yaml substituted), as DVC does."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stages = {}
    for name, stage in spec.items():
        if "foreach" not in stage:
            stages[name] = _substitute(stage, {}, params)
            continue
        for key, item in stage["foreach"].items():
            stages[f"{name}@{key}"] = _substitute(stage["do"], {"key": key, "item": item}, params)
    return stages


def _substitute(node, context: dict, params: dict):
    if isinstance(node, dict):
        return {k: _substitute(v, context, params) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, context, params) for v in node]
    if not isinstance(node, str):
        return node

    def value(match: re.Match) -> str:
        found: object = {**params, **context}
        for part in match.group(1).split("."):
            found = found[part]  # type: ignore[index]
        return str(found)

    return re.sub(r"\$\{([\w.]+)\}", value, node)


STAGES = expanded_stages()


def deps_of(stage: str) -> list[str]:
    return [
        (next(iter(d)) if isinstance(d, dict) else str(d)).rstrip("/") for d in STAGES[stage].get("deps", [])
    ]


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


def runs_nothing(path: Path) -> bool:
    """A module whose body is a docstring only."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def project_files(script: Path, methods: list[str] | None = None) -> set[Path]:
    """``script`` and every project file importing it can run; ``methods``: those the registry
    may load (default: all)."""
    loadable = (
        [METHODS / m / "detector.py" for m in methods] if methods else sorted(METHODS.glob("*/detector.py"))
    )
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen or path == PARAMS_READER:
            continue
        seen.add(path)
        if path == REGISTRY:
            todo += loadable
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return {p for p in seen if not (p.name == "__init__.py" and runs_nothing(p))}


def stage_files(stage: str) -> set[Path]:
    cmd = STAGES[stage]["cmd"]
    script = ROOT / re.search(r"python (stages/\S+\.py)", cmd).group(1)
    method = re.search(r"--method (\w+)", cmd)
    return project_files(script, [method.group(1)] if method else None)


def uncovered(stage: str, deps: list[str] | None = None) -> list[str]:
    """The project files ``stage`` can run that ``deps`` (default: its deps in dvc.yaml) miss."""
    deps = deps_of(stage) if deps is None else deps
    missing = []
    for path in sorted(stage_files(stage)):
        rel = path.relative_to(ROOT).as_posix()
        if not any(rel == d or rel.startswith(d + "/") for d in deps):
            missing.append(rel)
    return missing


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_cover_every_project_module_the_stage_runs(stage: str) -> None:
    missing = uncovered(stage)
    assert not missing, f"dvc.yaml: stage {stage}'s deps do not cover {missing}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_has_a_readable_number_of_deps(stage: str) -> None:
    assert len(deps_of(stage)) <= MAX_DEPS, f"{stage}: {len(deps_of(stage))} deps: {deps_of(stage)}"


def test_dvc_yaml_reads_on_one_screen_per_stage() -> None:
    assert len((ROOT / "dvc.yaml").read_text().splitlines()) <= 150


def test_each_method_with_something_to_fit_has_its_fit_stage() -> None:
    """fit@<method> for every method whose detector is fitted on images or score norms; none else."""
    from diffad.components.methods import detector_class, method_names

    fitted = {m for m in method_names() if detector_class(m).fits_on in ("images", "score_norms")}
    assert {s.partition("@")[2] for s in STAGES if s.startswith("fit@")} == fitted


def test_a_fit_stage_reaches_its_own_method_only() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in stage_files("fit@patchcore")}
    assert "src/diffad/methods/patchcore/detector.py" in files
    assert not any(f.startswith("src/diffad/methods/") and "/patchcore/" not in f for f in files), files


def test_the_import_walk_finds_function_level_and_relative_imports() -> None:
    """The walk itself: evaluate reaches the DDIM reconstruction only through the registry, and the
    denoiser's checkpoint module only through a function-level import."""
    files = {p.relative_to(ROOT).as_posix() for p in stage_files("evaluate")}
    assert {
        "src/diffad/methods/ddim/reconstruction.py",
        "src/diffad/components/denoiser/checkpoint.py",
    } <= files
    assert {"stages/__init__.py", "src/diffad/core/__init__.py"} <= files


def test_only_the_registry_and_the_params_reader_import_project_modules_by_name() -> None:
    """The rules above are complete: no other library module calls importlib on a module name."""
    by_name = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "src/diffad").rglob("*.py")
        if "import_module(" in path.read_text()
    }
    # cli.py dispatches `diffad <command>` to a stage script by name: the console script, no stage
    expected = {REGISTRY, PARAMS_READER, ROOT / "src/diffad/cli.py"}
    assert by_name <= {p.relative_to(ROOT).as_posix() for p in expected}


def test_changing_what_is_served_a_metric_or_the_dashboard_fits_nothing_again() -> None:
    """No fitting stage (nor the denoiser or its norms) depends on the served method, a metric or
    the dashboard: editing them leaves those stages' `dvc status` clean (and the integration test
    tests/integration/test_dvc_status_scope.py runs DVC to show it)."""
    edited = ["src/diffad/inference/serving.py", "src/diffad/metrics/roc.py", "dashboard/app.py"]
    for stage in STAGES:
        if stage == "evaluate":
            continue
        hits = [e for e in edited if any(e == d or e.startswith(d + "/") for d in deps_of(stage))]
        assert not hits, f"{stage} depends on {hits}"
