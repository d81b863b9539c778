"""Parameters and command lines: every bad value is one clear error, never a traceback (issue 11, 6)."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from diffad import cli
from diffad.config import Params
from diffad.core.errors import ConfigError
from diffad.core.typed_yaml import build, to_plain


def numeric_keys(cls=Params, prefix=""):
    """(dotted key, type) of every int or float parameter, nested sections included."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, key = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hint):
            yield from numeric_keys(hint, f"{key}.")
        elif hint in (int, float):
            yield key, hint


def with_value(key: str, value) -> dict:
    raw = to_plain(Params())
    node = raw
    *sections, last = key.split(".")
    for section in sections:
        node = node[section]
    node[last] = value
    return raw


KEYS = list(numeric_keys())


@pytest.mark.parametrize("key,hint", KEYS, ids=[k for k, _ in KEYS])
def test_every_numeric_param_has_a_range(key, hint):
    bad = [-(10**15), 10**15] if hint is int else [math.nan, math.inf, -math.inf, -1e15, 1e15]
    for value in bad:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            build(Params, with_value(key, value), "")


@pytest.mark.parametrize("value", [".nan", "50", "-50"])
def test_p_mean_that_trains_to_nan_is_refused(value, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\n")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-denoiser", "--params", str(params), "-S", f"train_denoiser.p_mean={value}"])
    assert exit_info.value.code == 2
    assert "train_denoiser.p_mean" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override,named",
    [
        ("train_denoiser.lr=[", "train_denoiser.lr"),  # invalid YAML
        ("train_denoiser.weight_decay=-1", "train_denoiser.weight_decay"),
        ("runtime.threads=-1", "runtime.threads"),
    ],
)
def test_bad_override_is_one_line_naming_the_key(override, named, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\n")
    with pytest.raises(SystemExit) as exit_info:
        args = ["--params", str(params), "-S", override, "--data", str(tmp_path / "none")]
        cli.main(["train-denoiser", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,named",
    [
        (["--threads", "-1"], "--threads"),
        (["--out", "{file}"], "{file}"),
    ],
)
def test_bad_predict_options_are_one_clear_error(args, named, tmp_path, capsys):
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    file = tmp_path / "not-a-folder.txt"
    file.write_text("user data\n")
    args = [a.replace("{file}", str(file)) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(image), "--bundle", str(tmp_path / "no-bundle"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert named.replace("{file}", str(file)) in err and "Traceback" not in err
    assert file.read_text() == "user data\n"


@pytest.mark.parametrize("load,expected", [(0.0, 2), (0.9, 1), (1.2, 1), (6.0, 1)])
def test_auto_threads_count_only_the_cores_not_busy(monkeypatch, load, expected):
    from diffad.core import runtime

    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (load, load, load))
    before = runtime.torch.get_num_threads()
    try:
        assert runtime.configure_threads(0) == expected  # 2 threads beside a busy process: 5 img/s
    finally:
        runtime.torch.set_num_threads(before)
