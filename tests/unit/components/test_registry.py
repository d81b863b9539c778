"""The registry: the folders of diffad/methods/ are the methods, each registered once."""

from __future__ import annotations

import sys

import pytest

from diffad.components.detector import CompositeDetector, Detector
from diffad.components.methods import (
    detector_class,
    method_names,
    method_order,
    model_files,
    register,
    scored_methods,
)
from diffad.config import load_params
from diffad.core.errors import ConfigError


def test_the_method_folders_are_the_methods_params_yaml_evaluates() -> None:
    listed = load_params("params.yaml").evaluate.methods
    assert set(method_names()) == set(listed)
    assert method_order() == listed  # params.yaml lists them in the table order the dashboard shows
    for name in listed:
        assert detector_class(name).name == name


def test_listing_the_methods_does_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys, diffad.config, diffad.components.methods as m; m.method_order(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_composites_expand_to_their_base_parts_and_the_files_they_load() -> None:
    assert scored_methods(("ensemble",)) == ("msma_gmm", "msma_flow", "ddim")
    assert scored_methods(("padim", "fused")) == (
        "padim",
        "msma_gmm",
        "msma_flow",
        "msma_features",
        "ddim",
        "patchcore",
    )
    assert model_files(("ensemble",)) == ("denoiser.safetensors", "gmm.json", "flow.safetensors")
    assert issubclass(detector_class("fused"), CompositeDetector)


def test_an_unknown_method_is_a_config_error_naming_the_known_ones(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown method 'nosuch'.*msma_gmm"):
        detector_class("nosuch")
    with pytest.raises(ConfigError, match="evaluate.methods: unknown method 'nosuch'"):
        load_params("params.yaml", ["evaluate.methods=[msma_gmm,nosuch]"])


def test_a_detector_must_live_in_the_module_named_after_it() -> None:
    class Misnamed(Detector):
        name = "not_this_module"

    with pytest.raises(TypeError, match=r"must live in diffad\.methods\.not_this_module\.detector"):
        register(Misnamed)
