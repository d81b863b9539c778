"""The method registry: which methods exist, their detector classes, in which order.

A method is a folder ``diffad/methods/<name>/`` whose ``detector.py`` defines one
:class:`~diffad.components.detector.Detector` subclass named ``<name>``, decorated with
:func:`register`. :func:`method_names` lists those folders without importing anything, so the typed
config can check the method list without torch; a detector's module is imported on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

from diffad.components.detector import CompositeDetector, Detector
from diffad.core.errors import ConfigError

METHODS_PACKAGE = "diffad.methods"


def method_names() -> tuple[str, ...]:
    """Names of every method (the folders of :data:`METHODS_PACKAGE` with a ``detector.py``), sorted."""
    spec = importlib.util.find_spec(METHODS_PACKAGE)
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return tuple(
        sorted(
            child.name
            for folder in folders
            for child in folder.iterdir()
            if (child / "detector.py").is_file() and not child.name.startswith(("_", "."))
        )
    )


_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: the one registration of a method (its folder's name is its name)."""
    if cls.__module__ != f"{METHODS_PACKAGE}.{cls.name}.detector":
        raise TypeError(
            f"{cls.__module__}: detector {cls.name!r} must live in {METHODS_PACKAGE}.{cls.name}.detector"
        )
    _REGISTRY[cls.name] = cls
    return cls


def detector_class(name: str) -> type[Detector]:
    """The registered detector ``name`` (its module is imported on first use)."""
    if name not in _REGISTRY:
        if name not in method_names():
            raise ConfigError(f"unknown method {name!r} (known: {', '.join(method_names())})")
        importlib.import_module(f"{METHODS_PACKAGE}.{name}.detector")
        if name not in _REGISTRY:
            raise TypeError(
                f"{METHODS_PACKAGE}.{name}.detector: defines no @register-ed detector named {name!r}"
            )
    return _REGISTRY[name]


def detector_classes(names: Iterable[str] | None = None) -> list[type[Detector]]:
    """Detectors ``names`` (default: every registered one), in table order."""
    classes = [detector_class(n) for n in (method_names() if names is None else names)]
    return sorted(classes, key=lambda c: (c.order, c.name))


def method_order() -> tuple[str, ...]:
    """Every registered method's name in table order (diffusion methods, composites, baselines)."""
    return tuple(c.name for c in detector_classes())


def is_composite(name: str) -> bool:
    return issubclass(detector_class(name), CompositeDetector)


def scored_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """The base methods ``methods`` need scored: themselves and the parts of each composite, in
    that order, once each."""
    methods = tuple(methods)
    parts = [p for m in methods if is_composite(m) for p in detector_class(m).parts]
    nested = [p for p in parts if is_composite(p)]
    if nested:
        raise ConfigError(f"composite parts must be base methods, got {nested}")
    return tuple(m for m in dict.fromkeys(methods + tuple(parts)) if not is_composite(m))


def model_files(methods: Iterable[str]) -> tuple[str, ...]:
    """The files (bundle names) ``methods`` load, their parts' included, once each."""
    return tuple(dict.fromkeys(f for m in scored_methods(methods) for f in detector_class(m).model_files))
