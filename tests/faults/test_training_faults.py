"""Training: the determinism contract, NaN guards, checkpoint checksums, one trainer per folder,
no orphaned trainer, normal file modes (issue 11, 3 + 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from diffad.components.denoiser.checkpoint import read_denoiser_config
from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.denoiser.training import STATE_FILE, train_denoiser
from diffad.core.errors import ConfigError, DiffadError
from diffad.core.files import exclusive_lock, normal_mode
from diffad.core.runtime_settings import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]
CFG = TrainDenoiserSettings(
    preset="xxs", batch_size=4, steps=4, lr_warmup_steps=1, checkpoint_every=2, log_every=2,
    sample_count=1, sample_steps=1,
)  # fmt: skip


def images() -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1


def train(out: Path, x: torch.Tensor | None = None, **kwargs):
    logs: list[str] = []
    x = images() if x is None else x
    result = train_denoiser(
        x, CFG, seed=0, device=torch.device("cpu"), out_dir=out, log=logs.append, **kwargs
    )
    return result, logs


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_thread_count_is_a_dvc_param_of_every_stage_that_computes_with_torch():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

    def script(name: str) -> str:
        spec = stages[name].get("do", stages[name])
        return (ROOT / spec["cmd"].split()[1]).read_text()

    computing = [name for name in stages if "stage_device(" in script(name)]
    assert {"train_denoiser", "score_norms", "fit", "evaluate"} <= set(computing)
    for name in computing:
        assert "runtime.threads" in stages[name].get("do", stages[name])["params"], name


def test_threads_must_be_a_fixed_count_not_auto():
    with pytest.raises(ConfigError, match="runtime.threads"):
        RuntimeSettings(threads=0)  # "all cores" would make the same dvc.lock give other models
    assert RuntimeSettings().threads == 1  # the default never oversubscribes a shared machine


def test_resuming_under_another_thread_count_starts_fresh(tmp_path):
    torch.set_num_threads(2)
    first, _ = train(tmp_path, max_steps_this_run=2)
    assert first.steps == 2
    torch.set_num_threads(1)
    second, logs = train(tmp_path)
    assert second.resumed_from == 0 and any("starting fresh" in line for line in logs)
    assert read_denoiser_config(second.weights)["threads"] == 1


def test_a_nan_loss_stops_training_naming_the_step(tmp_path):
    x = images()
    x[2, 0, 3, 3] = float("nan")
    with pytest.raises(DiffadError, match=r"train_denoiser: loss is nan at step \d+"):
        train(tmp_path, x)
    assert not (tmp_path / "denoiser.safetensors").exists()


def test_a_bit_flipped_checkpoint_is_not_resumed(tmp_path):
    train(tmp_path, max_steps_this_run=2)
    state = tmp_path / STATE_FILE
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensor data: torch.load would still read it
    state.write_bytes(bytes(data))
    result, logs = train(tmp_path)
    assert result.resumed_from == 0
    assert any("checksum" in line for line in logs)


def test_saved_weights_get_the_normal_file_mode(tmp_path):
    result, _ = train(tmp_path)
    for path in (result.weights, tmp_path / STATE_FILE):
        assert os.stat(path).st_mode & 0o777 == normal_mode(), path


def test_a_second_trainer_in_the_same_folder_is_refused(tmp_path):
    with exclusive_lock(tmp_path / STATE_FILE.parent / "train.lock", "train_denoiser"):
        with pytest.raises(DiffadError, match=f"pid {os.getpid()}"):
            train(tmp_path)


def test_a_stage_does_not_outlive_the_process_that_started_it(tmp_path):
    ready = tmp_path / "ready"
    child_code = (
        "import pathlib, time; from stages import die_with_parent; die_with_parent();"
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    parent_code = (
        "import subprocess, sys, time;"
        f"p = subprocess.Popen([sys.executable, '-c', {child_code!r}], cwd={str(ROOT)!r});"
        "print(p.pid, flush=True); time.sleep(120)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        for _ in range(600):  # the child imports torch first (seconds on a busy machine)
            if ready.exists():
                break
            time.sleep(0.1)
        assert ready.exists()
        parent.send_signal(signal.SIGKILL)  # kill -9 of `dvc`
        parent.wait()
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        for pid in (child, parent.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
