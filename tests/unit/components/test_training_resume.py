"""Interrupted and resumed training ends exactly where an uninterrupted run does; checkpoint files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffad.components.denoiser.checkpoint import load_denoiser, load_state, save_denoiser
from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.denoiser.training import STATE_FILE, batch_indices, train_denoiser
from diffad.components.denoiser.unet import build_denoiser
from diffad.core.errors import ArtifactError

# Every source of randomness switched on: flips, rotations, dropout, sigma and noise draws.
CFG = TrainDenoiserSettings(
    preset="xxs",
    batch_size=4,
    steps=12,
    lr=1e-3,
    lr_warmup_steps=3,
    dropout=0.1,
    hflip=True,
    vflip=True,
    rot90=True,
    ema_halflife_images=20,
    log_every=3,
    checkpoint_every=5,
    sample_count=2,
    sample_steps=2,
)


def images() -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1


def run(out: Path, cfg: TrainDenoiserSettings = CFG, seed: int = 0, **kwargs):
    logs: list[str] = []
    result = train_denoiser(
        images(), cfg, seed=seed, device=torch.device("cpu"), out_dir=out, log=logs.append, **kwargs
    )
    return result, logs


def test_interrupted_runs_end_with_identical_weights(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    whole, _ = run(tmp_path / "whole")
    first, _ = run(tmp_path / "split", max_steps_this_run=5)
    assert not first.finished and first.steps == 5 and first.weights is None
    second, _ = run(tmp_path / "split", max_steps_this_run=4)  # 5 -> 9, not at a checkpoint boundary
    assert second.resumed_from == 5 and second.steps == 9
    last, logs = run(tmp_path / "split")
    assert last.finished and last.resumed_from == 9 and last.steps_this_run == 3
    assert any("resuming" in line for line in logs)

    a, b = load_file(whole.weights), load_file(last.weights)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.loss_csv.read_text() == last.loss_csv.read_text()
    assert len(whole.loss_csv.read_text().splitlines()) == 1 + 12 // 3


def test_state_is_plain_tensors_and_other_seed_starts_fresh(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run(tmp_path, max_steps_this_run=5)
    state = load_state(tmp_path / STATE_FILE)  # torch.load(weights_only=True) inside
    assert state["step"] == 5
    result, logs = run(tmp_path, seed=1, max_steps_this_run=2)
    assert result.resumed_from == 0 and result.steps == 2
    assert any("starting fresh" in line for line in logs)


def test_more_steps_continue_a_finished_run(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run(tmp_path, max_steps_this_run=12)
    longer = TrainDenoiserSettings(**{**CFG.__dict__, "steps": 14})
    result, _ = run(tmp_path, cfg=longer)
    assert result.resumed_from == 12 and result.steps == 14


def test_every_image_once_per_epoch() -> None:
    seen = torch.cat([batch_indices(step, 4, 6, seed=0) for step in range(3)])  # 12 = two epochs
    assert sorted(seen[:6].tolist()) == list(range(6)) and sorted(seen[6:].tolist()) == list(range(6))
    assert not torch.equal(seen[:6], seen[6:])  # a fresh order per epoch


def test_missing_or_corrupt_weights_raise_artifact_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.safetensors"
    with pytest.raises(ArtifactError, match="nothing.safetensors"):
        load_denoiser(missing)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(ArtifactError, match="garbage.safetensors"):
        load_denoiser(garbage)
    good = save_denoiser(tmp_path / "good.safetensors", build_denoiser("xxs", 8))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="truncated.safetensors"):
        load_denoiser(truncated)


def test_unreadable_training_state_is_ignored(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    (tmp_path / STATE_FILE).parent.mkdir(parents=True)
    (tmp_path / STATE_FILE).write_bytes(b"not a torch file")
    result, logs = run(tmp_path, max_steps_this_run=1)
    assert result.resumed_from == 0 and any("unreadable" in line for line in logs)
