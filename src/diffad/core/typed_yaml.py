"""Plain YAML values -> frozen dataclasses, checked against the fields' type annotations.

The machinery behind :mod:`diffad.config`: unknown keys and wrong types are errors that name the
full key (``train_denoiser.lerning_rate``), lists become tuples (configs are frozen), ``a.b=value``
overrides use the syntax of ``dvc exp run -S``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from diffad.core.errors import ConfigError, check_range

__all__ = ["Section", "apply_override", "build", "convert", "section", "setting", "to_plain"]

T = TypeVar("T")


def setting(default: Any, doc: str, low: float | None = None, high: float | None = None) -> Any:
    """A field of a :class:`Section`: its one default, its one-line description (the comment
    ``diffad params`` writes into params.yaml) and, for numbers, its inclusive range."""
    metadata = {"doc": doc, "range": None if low is None else (low, high)}
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type, doc: str = "") -> Any:
    """A field holding a nested :class:`Section` with its defaults."""
    return dataclasses.field(default_factory=cls, metadata={"doc": doc, "range": None})


@dataclasses.dataclass(frozen=True)
class Section:
    """A frozen settings section of params.yaml: ``key`` is its full name (``patchcore``,
    ``data``); each field's range (:func:`setting`) is checked on construction, then :meth:`check`
    runs the rules between fields."""

    key: typing.ClassVar[str]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            bounds = f.metadata.get("range")
            if bounds is not None:
                check_range(f"{self.key}.{f.name}", getattr(self, f.name), *bounds)
        self.check()

    def check(self) -> None:
        """Rules between fields; raise :class:`ConfigError` naming the key."""


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override in place; the value is parsed as YAML."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE")
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(text) if text else ""
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"override {item!r}: {key}: the value is not valid YAML ({reason})") from None


def build(cls: type[T], raw: Any, prefix: str) -> T:
    """Instantiate dataclass ``cls`` from mapping ``raw``; errors name ``prefix.key``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix}: expected a mapping, got {type(raw).__name__}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{_join(prefix, unknown[0])}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {name: convert(value, hints[name], _join(prefix, name)) for name, value in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field without default
        raise ConfigError(f"{prefix}: {exc}") from None


def convert(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against type ``hint`` and convert lists to tuples (configs are frozen)."""
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if hint is Any:
        return value
    if origin is Literal:
        if value not in get_args(hint):
            choices = " | ".join(map(str, get_args(hint)))
            raise ConfigError(f"{key}: {value!r} is not one of {choices}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches no allowed type")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = get_args(hint)
        item_hint = args[0] if args else Any
        return tuple(convert(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        _, value_hint = get_args(hint) or (str, Any)
        return {str(k): convert(v, value_hint, f"{key}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint!r}")


def to_plain(obj: Any) -> Any:
    """Dataclasses → dicts, tuples → lists, recursively."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
