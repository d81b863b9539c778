"""A tiny denoiser trained on four simple images: it learns them, and its DDIM reconstruction
finds a painted defect."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffad.components.denoiser.checkpoint import load_denoiser, read_denoiser_config
from diffad.components.denoiser.loss import edm_loss
from diffad.components.denoiser.settings import TrainDenoiserSettings
from diffad.components.denoiser.training import train_denoiser
from diffad.components.denoiser.unet import build_denoiser
from diffad.methods.ddim.reconstruction import DDIMDetector
from diffad.methods.ddim.sampling import reconstruct
from diffad.methods.ddim.settings import DdimSettings

H = 16
DEFECT = (slice(4, 8), slice(9, 13))  # rows, columns of the painted square


def simple_images() -> torch.Tensor:
    """Four smooth 16 x 16 RGB images in [-1, 1]: gradients and a cosine pattern."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, H), indexing="ij")
    zero = torch.zeros_like(xx)
    return torch.stack(
        [
            torch.stack([xx - 0.5, yy - 0.5, zero]),
            torch.stack([0.5 - yy, zero + 0.2, xx - 0.5]),
            torch.stack([torch.cos(2 * math.pi * xx) / 2, torch.cos(2 * math.pi * yy) / 2, zero - 0.3]),
            torch.stack([zero + 0.4, (xx + yy) / 2 - 0.5, torch.sin(math.pi * yy) * 0.6 - 0.3]),
        ]
    ).float()


def with_defect(images: torch.Tensor) -> torch.Tensor:
    bad = images.clone()
    bad[:, :, DEFECT[0], DEFECT[1]] = torch.tensor([0.9, -0.9, 0.9]).view(3, 1, 1)
    return bad


def pooled_features(x: torch.Tensor) -> list[torch.Tensor]:
    """Stand-in backbone: the 2x2-pooled image plus a constant channel (so cosine sees brightness)."""
    pooled = F.avg_pool2d(x, 2)
    return [torch.cat([pooled, torch.ones_like(pooled[:, :1])], dim=1)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainDenoiserSettings]:
    torch.set_num_threads(1)
    cfg = TrainDenoiserSettings(
        preset="xxs",
        batch_size=16,
        steps=100,
        lr=5e-3,
        lr_warmup_steps=10,
        ema_halflife_images=200,
        hflip=False,
        log_every=25,
        checkpoint_every=1000,
        sample_count=4,
        sample_steps=4,
    )
    out = tmp_path_factory.mktemp("tiny")
    result = train_denoiser(
        simple_images(), cfg, seed=0, device=torch.device("cpu"), out_dir=out, log=lambda _: None
    )
    assert result.finished and result.steps == 100
    assert result.samples is not None and result.samples.shape == (cfg.sample_count, 3, H, H)
    return out, cfg


def test_outputs_are_written(trained: tuple[Path, TrainDenoiserSettings]) -> None:
    out, cfg = trained
    rows = (out / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,loss"
    assert [int(r.split(",")[0]) for r in rows[1:]] == [25, 50, 75, 100]
    assert not (out / "samples.png").exists()  # the samples come back to be drawn by the caller
    config = read_denoiser_config(out / "denoiser.safetensors")
    assert (config["preset"], config["resolution"], config["channels"]) == ("xxs", H, 3)
    assert config["train_denoiser"]["lr"] == cfg.lr and config["seed"] == 0


def test_loss_falls_by_a_large_factor(trained: tuple[Path, TrainDenoiserSettings]) -> None:
    """EDM loss on the training images at fixed sigmas and noise: untrained net vs trained EMA."""
    out, _ = trained
    g = torch.Generator().manual_seed(1)
    images = simple_images().repeat(16, 1, 1, 1)
    sigma = torch.exp(torch.randn(64, generator=g) * 1.2 - 1.2)
    noise = torch.randn(images.shape, generator=g)
    with torch.no_grad():
        before = edm_loss(build_denoiser("xxs", H), images, sigma, noise).mean()
        after = edm_loss(load_denoiser(out / "denoiser.safetensors"), images, sigma, noise).mean()
    assert before > 0.5  # ~1 for data with std sigma_data: the untrained D is c_skip x
    assert after < before / 4


def test_reconstruction_and_map_find_the_defect(trained: tuple[Path, TrainDenoiserSettings]) -> None:
    out, _ = trained
    denoiser = load_denoiser(out / "denoiser.safetensors")
    good, bad = simple_images(), with_defect(simple_images())
    cfg = DdimSettings(sigma_start=0.5, steps=6, guidance=1.0, blur_sigma=4.0)

    def error(y: torch.Tensor) -> torch.Tensor:
        x_hat = reconstruct(denoiser, y, cfg, torch.Generator().manual_seed(0))
        return (x_hat - good).abs().mean(dim=(1, 2, 3))  # distance to the clean image

    assert bool((error(good) < error(bad)).all())

    detector = DDIMDetector(denoiser, pooled_features, cfg, "cpu")
    scores, maps, x_hat = detector.score(torch.cat([good, bad]))
    assert scores.shape == (8,) and maps.shape == (8, H, H) and x_hat.shape == (8, 3, H, H)
    assert scores[4:].min() > scores[:4].max()
    for m in maps[4:]:
        row, col = np.unravel_index(np.argmax(m), m.shape)
        assert DEFECT[0].start <= row < DEFECT[0].stop and DEFECT[1].start <= col < DEFECT[1].stop


def test_scores_do_not_depend_on_the_batch(trained: tuple[Path, TrainDenoiserSettings]) -> None:
    out, _ = trained
    cfg = DdimSettings(sigma_start=0.5, steps=3, batch_size=3)
    detector = DDIMDetector(load_denoiser(out / "denoiser.safetensors"), pooled_features, cfg, "cpu")
    images = torch.cat([simple_images(), with_defect(simple_images())])
    scores, maps, _ = detector.score(images)
    one_score, one_map, _ = detector.score(images[5:6])
    np.testing.assert_allclose(one_score, scores[5:6], rtol=1e-5)
    np.testing.assert_allclose(one_map, maps[5:6], rtol=1e-4, atol=1e-6)


def test_checkpoint_round_trip_gives_identical_outputs(
    trained: tuple[Path, TrainDenoiserSettings], tmp_path: Path
) -> None:
    from diffad.components.denoiser.checkpoint import save_denoiser

    out, _ = trained
    first = load_denoiser(out / "denoiser.safetensors")
    again = load_denoiser(save_denoiser(tmp_path / "copy.safetensors", first))
    x = torch.randn(3, 3, H, H, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = first(x, torch.tensor([0.1, 1.0, 10.0])), again(x, torch.tensor([0.1, 1.0, 10.0]))
    assert not torch.equal(a, first.c_skip(torch.tensor([0.1, 1.0, 10.0])).view(-1, 1, 1, 1) * x)
    assert torch.equal(a, b)
