"""The library's imports point down: no import circle, no import of a higher layer, no long file.

The graph is read from the source with :mod:`ast` (nothing is imported). What counts as an import
of a diffad module:

* every ``import`` and ``from ... import`` in a module: at the top, inside a function or method (a
  lazy import still runs in the same process and still ties the two modules together) and inside
  ``if TYPE_CHECKING:``. Type-only imports count too: a signature written in a higher layer's
  types is a dependency of the design even when it costs nothing at run time. Where a lower module
  has to name what a higher one provides, it declares a ``Protocol`` of what it uses and the higher
  one satisfies it, or the lower layer holds the part it needs (``components.model_context``,
  which ``inference.models.Models`` extends);
* ``from package import name`` imports the module ``package.name`` when there is one, otherwise
  ``package``; relative imports are resolved. The implicit import of a module's parent packages is
  not an edge (a package's ``__init__`` belongs to its own layer).

Not seen: imports by computed name (``importlib.import_module``). The method registry
(``components.methods``) loads ``methods/<name>/detector.py`` that way, on purpose: the registry
knows methods by name only, and a composite (``ensemble``, ``fused``) names its parts as strings.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "diffad"
MAX_LINES = 350

# The layers, lowest first; a module may import its own layer and the ones before it. A module's
# layer is its first name under diffad (``diffad.methods.padim.model`` -> methods), except the
# settings modules (``*/settings.py``, ``*_settings.py``): each lives beside the code it configures
# but is a leaf every layer may read, and config composes them all. The root package
# ``diffad/__init__.py`` runs before any of its modules, so it belongs to core.
LAYERS = (
    ("core", "errors, atomic files, JSON Lines, typed YAML, runtime: needs nothing else of diffad"),
    ("settings", "each package's settings section: defaults, descriptions, ranges; core only"),
    ("artifacts", "where every file goes and each document's shape: a contract over core alone"),
    ("data", "images in: reading, transforms, the manifest and its checks; writes artifacts"),
    ("metrics", "numbers from scores and labels (numpy only); anything may measure"),
    ("viz", "heatmaps, grids, montages of arrays; draws, decides nothing"),
    ("components", "what several methods share (detector interface, registry, denoiser, backbone)"),
    ("methods", "one folder per method, built on the components; found by name, never imported"),
    ("config", "composes every settings section (the registry lists the methods) into Params"),
    ("registry", "the GTO model registry (which bundle is promoted): core only; inference uses it"),
    ("inference", "the served path: bundle, loaded models, the decision rule, predict"),
    ("evaluation", "measures through inference's scoring path, so what is measured is what is served"),
    ("feedback", "reviewers' verdicts into data; measures their effect with inference"),
    ("monitoring", "watches what serving logged and what reviewers said: reads everyone"),
    ("cli", "the console script: dispatches to the stages by name"),
)
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def module_imports(module: str, is_package: bool, source: str) -> dict[str, int]:
    """The diffad modules ``source`` (of ``module``) imports -> the line of the first import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                found.setdefault(_existing(name), node.lineno)
    found.pop(module, None)
    return found


def _existing(name: str) -> str:
    """``name``, or its nearest enclosing module when it names something inside one."""
    while name not in modules() and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


@cache
def graph() -> dict[str, dict[str, int]]:
    """importer -> {imported module: line of the first import}, every diffad module."""
    return {m: module_imports(m, p.name == "__init__.py", p.read_text()) for m, p in modules().items()}


def is_settings(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "settings" or last.endswith("_settings")


def layer(module: str) -> str:
    parts = module.split(".")
    name = "core" if len(parts) == 1 else "settings" if is_settings(module) else parts[1]
    assert name in RANK, f"{module}: its layer {name!r} is not in LAYERS; put it there, with its reason"
    return name


def unit(module: str) -> str:
    """The package a module belongs to for the package graph: ``diffad.<layer>``, and one unit per
    method folder (``diffad.methods.padim``)."""
    if is_settings(module):
        return f"{PACKAGE}.settings"
    parts = module.split(".")
    return ".".join(parts[:3] if parts[1:2] == ["methods"] and len(parts) > 2 else parts[:2])


def method_folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[1:2] == ["methods"] and len(parts) > 2 else None


def where(importer: str, target: str) -> str:
    path = modules()[importer].relative_to(SRC.parent)
    return f"{path}:{graph()[importer][target]}: {importer} -> {target}"


def live_edges() -> dict[str, set[str]]:
    """importer -> the modules it imports."""
    return {a: set(targets) for a, targets in graph().items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a chain ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in sorted(edges):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(edges.get(root, ())))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


def test_the_graph_reader():
    """Every kind of import is found; a circle is reported as a chain."""
    source = """
from typing import TYPE_CHECKING
from diffad.core import errors
from .maps import resize_maps
if TYPE_CHECKING:
    from diffad.core.files import atomic_write
def later():
    import diffad.core.jsonl
"""
    found = module_imports("diffad.core.example", False, source)
    assert set(found) == {"diffad.core.errors", "diffad.core.maps", "diffad.core.files", "diffad.core.jsonl"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert all(layer(m) for m in modules())  # every module has a layer


def test_no_import_circle_between_modules():
    cycle = find_cycle(live_edges())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_import_circle_between_packages():
    packages: dict[str, set[str]] = defaultdict(set)
    for importer, targets in live_edges().items():
        packages[unit(importer)] |= {unit(t) for t in targets} - {unit(importer)}
    cycle = find_cycle(packages)
    assert cycle is None, "package circle: " + " -> ".join(cycle or [])


def test_imports_point_down():
    upward = [
        f"{where(a, b)} ({layer(a)} imports the higher {layer(b)})"
        for a, targets in live_edges().items()
        for b in sorted(targets)
        if RANK[layer(b)] > RANK[layer(a)]
    ]
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_components_import_no_method():
    found = [
        where(a, b) for a, t in graph().items() if layer(a) == "components" for b in t if method_folder(b)
    ]
    assert not found, "components import a method (register it, look it up by name):\n" + "\n".join(found)


def test_methods_import_no_other_method():
    """Each method folder stands alone; what two share belongs in components. The composites
    (``ensemble``, ``fused``) name their parts as strings and get them through the registry."""
    found = [
        where(a, b)
        for a, targets in graph().items()
        for b in sorted(targets)
        if method_folder(a) and method_folder(b) and method_folder(a) != method_folder(b)
    ]
    assert not found, "a method imports another method:\n" + "\n".join(found)


def test_no_long_library_file():
    long = {
        str(p.relative_to(SRC.parent)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines (split by responsibility): {long}"
