"""One typed, frozen configuration for the whole pipeline: :class:`Params`, the whole of params.yaml.

Each section is a frozen :class:`~diffad.core.typed_yaml.Section` that lives beside the code it
configures (``data/settings.py``, ``components/settings.py``, ``methods/<name>/settings.py``, ...)
and holds, once, every key's default, description and range. This module only composes them: the
fixed sections, then one section per method folder that has a ``settings.py`` (found by name, so a
new method's settings need no edit here), then `evaluate` and `monitoring`.

params.yaml is written from these defaults (``diffad params > params.yaml``; a test keeps the
committed file equal to it). It is read once, by the stage scripts and the CLI, never by library
code: unknown keys and wrong types are errors naming the full key (``train_denoiser.lerning_rate``),
``-S key=value`` overrides (the syntax of ``dvc exp run -S``) are applied before checking.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import typing
from pathlib import Path
from typing import Any

import yaml

from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.methods import METHODS_PACKAGE, method_names
from diffad.components.settings import BackboneSettings, ScoreNormSettings
from diffad.core.errors import ConfigError, check_range
from diffad.core.runtime_settings import RuntimeSettings
from diffad.core.typed_yaml import Section, apply_override, build, section, setting, to_plain
from diffad.data.settings import ConvertDatasetSettings, DataSettings, FeedbackSettings
from diffad.evaluation.settings import EvaluateSettings
from diffad.monitoring.settings import MonitoringSettings

HEADER = """\
# diffad parameters, written by `diffad params` from the settings beside the code (src/diffad/config.py
# says where). Unknown keys and wrong types are errors. Override with `dvc exp run -S key=value` or
# `diffad <stage> -S key=value`. These values are the CPU demo (2 cores); each method reads at its own
# input side (train_denoiser.resolution for the pixel denoiser, backbone.input_size for the backbone);
# on a GPU raise train_denoiser.resolution/preset/steps.
"""


def method_settings() -> dict[str, type[Section]]:
    """Each method's settings class (``methods/<name>/settings.py``, the Section whose key is the
    method's name), methods in the default report order, then the others by name."""
    default_order = EvaluateSettings.__dataclass_fields__["methods"].default
    names = sorted(method_names(), key=lambda n: (n not in default_order, _index(default_order, n), n))
    found = {}
    for name in names:
        module_name = f"{METHODS_PACKAGE}.{name}.settings"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Section) and getattr(value, "key", None) == name
        ]
        if len(classes) != 1:
            raise TypeError(f"{module_name}: defines {len(classes)} Section classes with key {name!r}, not 1")
        found[name] = classes[0]
    return found


def _index(order: tuple[str, ...], name: str) -> int:
    return order.index(name) if name in order else 0


def _params_post_init(self) -> None:
    check_range("seed", self.seed, 0, 2**32 - 1)  # NumPy seeds are unsigned 32-bit
    known = method_names()
    for method in self.evaluate.methods:
        if method not in known:
            raise ConfigError(f"evaluate.methods: unknown method {method!r} (known: {', '.join(known)})")
    if self.train_denoiser.resolution > self.data.resolution:
        raise ConfigError(
            f"train_denoiser.resolution: {self.train_denoiser.resolution} is above data.resolution "
            f"{self.data.resolution}: the denoiser reads the prepared images, downscaled, never upsampled"
        )


def _to_dict(self) -> dict[str, Any]:
    """Plain nested dict (YAML/JSON-safe), e.g. to embed in a checkpoint."""
    return to_plain(self)


def _make_params() -> type:
    fixed: list[tuple[str, type, Any]] = [
        ("data", DataSettings, section(DataSettings)),
        ("seed", int, setting(0, "one seed for data generation, training and sampling", 0, 2**32 - 1)),
        ("runtime", RuntimeSettings, section(RuntimeSettings)),
        ("convert_dataset", ConvertDatasetSettings, section(ConvertDatasetSettings)),
        ("feedback", FeedbackSettings, section(FeedbackSettings)),
        ("train_denoiser", TrainDenoiserSettings, section(TrainDenoiserSettings)),
        ("score_norms", ScoreNormSettings, section(ScoreNormSettings)),
        ("backbone", BackboneSettings, section(BackboneSettings)),
    ]
    methods = [(name, cls, section(cls)) for name, cls in method_settings().items()]
    last = [
        ("evaluate", EvaluateSettings, section(EvaluateSettings)),
        ("monitoring", MonitoringSettings, section(MonitoringSettings)),
    ]
    return dataclasses.make_dataclass(
        "Params",
        fixed + methods + last,
        frozen=True,
        namespace={
            "__post_init__": _params_post_init,
            "to_dict": _to_dict,
            "__doc__": "The whole of params.yaml (sections in file order). Built by :func:`load_params`.",
            "__module__": __name__,
        },
    )


Params = _make_params()


def load_params(path: str | Path, overrides: typing.Sequence[str] = ()) -> Params:
    """Read ``path`` (YAML), apply ``key.sub=value`` overrides and build :class:`Params`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: parameter file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for item in overrides:
        apply_override(raw, item)
    return params_from_dict(raw, source=str(path))


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    """Build :class:`Params` from a plain dict, checking keys and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return build(Params, raw, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def default_params_yaml() -> str:
    """params.yaml with every default, each key commented with its description."""
    lines = [HEADER.rstrip("\n")]
    for top in dataclasses.fields(Params):
        default = top.default_factory() if top.default_factory is not dataclasses.MISSING else top.default
        if isinstance(default, Section):
            doc = " ".join((type(default).__doc__ or "").strip().split("\n\n")[0].split())
            lines += ["", f"# {doc}" if doc else None, f"{top.name}:"]
            lines += [
                _line(f"  {f.name}", getattr(default, f.name), f.metadata.get("doc", ""))
                for f in dataclasses.fields(default)
            ]
        else:
            lines += ["", _line(top.name, default, top.metadata.get("doc", ""))]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _line(key: str, value: Any, doc: str) -> str:
    text = f"{key}: {yaml.safe_dump(to_plain(value), default_flow_style=True, width=1000).strip()}"
    text = text.removesuffix("\n...").removesuffix(" ...")
    return f"{text:<30} # {doc}".rstrip(" #") if doc else text
