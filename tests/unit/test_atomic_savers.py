"""Every saver writes through the one helper, :func:`diffad.core.files.atomic_write` (issue 12): a save
that fails half-way (disk full) leaves the previous file byte-identical, and no temporary file.

The failure is injected into the lowest-level writer each saver calls (``Path.write_text`` /
``write_bytes``, ``np.save``): it writes a few bytes to the file
it was given, then raises, as a full disk would. A saver that wrote straight onto its target
would leave those few bytes there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from diffad.artifacts.records import write_json
from diffad.components.backbone_model import save_state
from diffad.components.denoiser.checkpoint import save_state as save_training_state
from diffad.components.denoiser.training import write_loss_csv
from diffad.components.score_norms import ScoreNorms, save_score_cache
from diffad.components.settings import BackboneSettings
from diffad.methods.msma_flow.model import PatchFlow, save_patchflow
from diffad.methods.msma_flow.settings import MsmaFlowSettings
from diffad.methods.msma_gmm.mixture import GMMModel, fit_gmm
from diffad.methods.msma_gmm.settings import MsmaGmmSettings
from diffad.methods.patchcore.settings import PatchCoreSettings


class DiskFull(OSError):
    pass


def _failing(real):
    """``real``'s stand-in: writes b"half" to the file it was given (a path or an open file), then
    raises."""

    def write(*args, **kwargs):
        for arg in (*args, kwargs.get("filename")):
            name = getattr(arg, "name", None) if hasattr(arg, "write") else arg
            if isinstance(name, str | os.PathLike):
                with open(name, "wb") as f:  # not Path.write_bytes: that may be what is patched
                    f.write(b"half")
                break
        raise DiskFull("no space left on device")

    return write


def _gmm() -> GMMModel:
    return fit_gmm(np.random.default_rng(0).normal(size=(40, 3)), MsmaGmmSettings(n_components=2), seed=0)


SAVERS = {
    "gmm.json": (lambda path: _gmm().save(path), "text"),
    "metrics.json": (lambda path: write_json(path, {"a": 1}), "text"),
    "loss.csv": (lambda path: write_loss_csv(path, [(1, 0.5)]), "text"),
    "flow.safetensors": (
        lambda path: save_patchflow(PatchFlow(3, MsmaFlowSettings(hidden=8)), path),
        "bytes",
    ),
    "patchcore.safetensors": (
        lambda path: save_state(
            path,
            "patchcore",
            {"memory_bank": torch.ones(2, 3)},
            {"backbone": BackboneSettings(), "settings": PatchCoreSettings()},
            {},
        ),
        "bytes",
    ),
    "checkpoint.pt": (lambda path: save_training_state(path, {"step": 1}), "bytes"),
}


@pytest.mark.parametrize("name", sorted(SAVERS))
def test_a_failing_save_leaves_the_previous_file_byte_identical(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save, how = SAVERS[name]
    path = tmp_path / name
    save(path)
    before = path.read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())
    if how == "text":
        monkeypatch.setattr(Path, "write_text", _failing(Path.write_text))
    else:
        monkeypatch.setattr(Path, "write_bytes", _failing(Path.write_bytes))
    with pytest.raises(DiskFull):
        save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no temporary file left


def test_a_failing_score_cache_save_leaves_the_previous_cache_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    norms = ScoreNorms(rng.random((2, 3), np.float32), rng.random((2, 3, 4, 4), np.float32))
    save_score_cache(tmp_path, norms, [1.0, 2.0, 3.0])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(np, "save", _failing(np.save))
    with pytest.raises(DiskFull):
        save_score_cache(tmp_path, ScoreNorms(norms.image_norms * 2, norms.patch_norms * 2), [1.0, 2.0, 3.0])
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
