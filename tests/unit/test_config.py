"""The typed config: defaults, overrides, and errors that name the offending key."""

from pathlib import Path

import pytest
import yaml

from diffad.config import Params, load_params, params_from_dict
from diffad.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_repository_params_load_and_match_defaults_for_listed_keys():
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params.data.source == raw["data"]["source"]
    assert params.data.resolution == raw["data"]["resolution"]
    assert isinstance(params, Params)


def test_overrides_are_parsed_as_yaml_and_typed(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  resolution: 64\n")
    params = load_params(path, ["data.resolution=32", "data.source=mvtec", "evaluate.ddim.steps=7"])
    assert params.data.resolution == 32
    assert params.data.source == "mvtec"
    assert params.evaluate.ddim.steps == 7


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"dat": {}}, "dat"),
        ({"data": {"resolutin": 64}}, "data.resolutin"),
        ({"data": {"resolution": "64px"}}, "data.resolution"),
        ({"data": {"resolution": 4}}, "data.resolution"),
        ({"data": {"source": "imagenet"}}, "data.source"),
        ({"train_ddim": {"hflip": 1}}, "train_ddim.hflip"),
        ({"train_ddim": {"steps": 1.5}}, "train_ddim.steps"),
        ({"evaluate": {"ddim": {"stepz": 3}}}, "evaluate.ddim.stepz"),
        ({"evaluate": {"methods": "ddim"}}, "evaluate.methods"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_bad_keys_and_values_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        params_from_dict(raw)


def test_int_is_accepted_where_float_expected_and_lists_become_tuples():
    params = params_from_dict({"train_ddim": {"lr": 1}, "evaluate": {"methods": ["ddim", "padim"]}})
    assert params.train_ddim.lr == 1.0 and isinstance(params.train_ddim.lr, float)
    assert params.evaluate.methods == ("ddim", "padim")


def test_config_is_frozen_and_round_trips_through_plain_dict():
    params = params_from_dict({"data": {"category": "bottle"}, "seed": 3})
    with pytest.raises(AttributeError):
        params.seed = 4  # type: ignore[misc]
    assert params_from_dict(params.to_dict()) == params


def test_missing_file_and_bad_yaml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_params(bad)


def test_malformed_override_is_an_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("{}")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_params(path, ["data.resolution"])


def test_params_yaml_and_the_config_defaults_are_one_source_of_values() -> None:
    """Every key is in params.yaml (so `dvc params diff` sees it) and config.py's default is the
    same value: a default that differs would silently apply wherever params.yaml is not read."""
    from pathlib import Path

    import yaml

    from diffad.config import Params

    def plain(value):
        return [plain(v) for v in value] if isinstance(value, list | tuple) else value

    def differences(defaults: dict, written: dict, prefix: str = "") -> list[str]:
        found = []
        for key in sorted(set(defaults) | set(written)):
            name = f"{prefix}{key}"
            if key not in written:
                found.append(f"{name}: only in config.py")
            elif key not in defaults:
                found.append(f"{name}: only in params.yaml")
            elif isinstance(defaults[key], dict) and isinstance(written[key], dict):
                found += differences(defaults[key], written[key], f"{name}.")
            elif plain(defaults[key]) != plain(written[key]):
                found.append(f"{name}: config.py {defaults[key]!r}, params.yaml {written[key]!r}")
        return found

    written = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    assert differences(Params().to_dict(), written) == []
