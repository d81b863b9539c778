"""Every model file's bytes depend only on what it holds (issue 23): ``dvc.lock`` records their
hashes, so a saver whose bytes vary from run to run makes every fresh ``dvc repro`` a change.

``safetensors`` keeps a file's metadata in a Rust hash map whose order varies between maps, even
within one process: a saver with more than one metadata key gave a new file (and hash) on most saves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from diffad.components.backbone_model import save_state
from diffad.components.denoiser.checkpoint import save_denoiser
from diffad.components.denoiser.unet import build_denoiser
from diffad.components.settings import BackboneSettings
from diffad.core.files import save_safetensors
from diffad.methods.msma_flow.model import PatchFlow, save_patchflow
from diffad.methods.msma_flow.settings import MsmaFlowSettings
from diffad.methods.patchcore.settings import PatchCoreSettings

SAVES = 12  # enough that a random key order repeats the same bytes with probability < 1e-9

SAVERS = {
    "baselines": lambda path: save_state(
        path,
        "patchcore",
        {"memory_bank": torch.arange(6.0).reshape(2, 3)},
        {"backbone": BackboneSettings(), "settings": PatchCoreSettings()},
        {"k": 1},
    ),
    "flow": lambda path: save_patchflow(PatchFlow(3, MsmaFlowSettings(hidden=8)), path),
    "denoiser": lambda path: save_denoiser(path, build_denoiser("xs", 16), extra={"b": 1, "a": 2}),
    "many metadata keys": lambda path: save_safetensors(
        path,
        {"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.float16)},
        {f"key{i}": str(i) for i in range(8)},
    ),
}


@pytest.mark.parametrize("name", sorted(SAVERS))
def test_saving_the_same_content_again_gives_the_same_bytes(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    blobs = set()
    for i in range(SAVES):
        torch.manual_seed(0)  # the same content each time
        path = tmp_path / f"{i}.safetensors"
        SAVERS[name](path)
        blobs.add(path.read_bytes())
    assert len(blobs) == 1


def test_the_rewritten_header_loads_with_safetensors_itself(tmp_path: Path) -> None:
    tensors = {
        "a": torch.arange(5, dtype=torch.int64),
        "b": torch.rand(3, 7),
        "c": torch.ones(1, dtype=torch.float16),
    }
    metadata = {"z": "last", "a": "first", "m": '{"json": [1, 2]}'}
    path = save_safetensors(tmp_path / "x.safetensors", tensors, metadata)
    loaded = load_file(str(path))
    assert set(loaded) == set(tensors)
    for key, value in tensors.items():
        assert torch.equal(loaded[key], value) and loaded[key].dtype == value.dtype
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == metadata
    assert int.from_bytes(path.read_bytes()[:8], "little") % 8 == 0


def test_a_released_lock_file_keeps_no_pid(tmp_path: Path) -> None:
    """The tiny pipeline run twice differed only in models/denoiser/checkpoint/train.lock (a DVC
    output): it kept the pid of the run that had held it. Released, it names no owner."""
    from diffad.core.files import exclusive_lock

    lock = tmp_path / "train.lock"
    with exclusive_lock(lock, "train_denoiser"):
        assert lock.read_text().startswith("pid ")
    assert lock.read_bytes() == b""
