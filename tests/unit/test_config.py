"""The typed config: defaults, overrides, and errors that name the offending key."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from diffad.config import Params, load_params, params_from_dict
from diffad.core.errors import ConfigError

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
    params = load_params(path, ["data.resolution=32", "data.source=mvtec", "ddim.steps=7"])
    assert params.data.resolution == 32
    assert params.data.source == "mvtec"
    assert params.ddim.steps == 7


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"dat": {}}, "dat"),
        ({"data": {"resolutin": 64}}, "data.resolutin"),
        ({"data": {"resolution": "64px"}}, "data.resolution"),
        ({"data": {"resolution": 4}}, "data.resolution"),
        ({"data": {"source": "imagenet"}}, "data.source"),
        ({"train_denoiser": {"hflip": 1}}, "train_denoiser.hflip"),
        ({"train_denoiser": {"steps": 1.5}}, "train_denoiser.steps"),
        ({"ddim": {"stepz": 3}}, "ddim.stepz"),
        ({"evaluate": {"methods": "ddim"}}, "evaluate.methods"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_bad_keys_and_values_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        params_from_dict(raw)


def test_int_is_accepted_where_float_expected_and_lists_become_tuples():
    params = params_from_dict({"train_denoiser": {"lr": 1}, "evaluate": {"methods": ["ddim", "padim"]}})
    assert params.train_denoiser.lr == 1.0 and isinstance(params.train_denoiser.lr, float)
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


def test_params_yaml_is_written_from_the_settings_beside_the_code():
    """Every default is written once, in the settings dataclass; params.yaml is `diffad params`."""
    from pathlib import Path

    from diffad.config import default_params_yaml

    committed = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()
    assert committed == default_params_yaml(), "params.yaml is stale: run `diffad params > params.yaml`"


def test_a_range_is_checked_where_it_is_declared_and_names_the_full_key():
    from diffad.methods.patchcore.settings import PatchCoreSettings

    with pytest.raises(ConfigError, match=r"patchcore\.coreset_ratio: 2\.0 is outside \[0\.0001, 1\.0\]"):
        PatchCoreSettings(coreset_ratio=2.0)
    with pytest.raises(ConfigError, match=r"patchcore\.coreset_ratio"):
        params_from_dict({"patchcore": {"coreset_ratio": 0.0}})


def test_a_new_methods_settings_join_params_without_an_edit_to_config():
    from diffad.config import Params, method_settings

    sections = [f.name for f in dataclasses.fields(Params)]
    assert list(method_settings()) == [s for s in sections if s in method_settings()]
    assert all(section in sections for section in method_settings())
