"""Pure helpers of the bench scripts: stage order (bench_pipeline), backbone weight transfer and metric
resizing (peer_anomalib). Timings are measured by the scripts themselves, never tested here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))
import bench_pipeline  # noqa: E402
import denoiser_crops  # noqa: E402
import peer_anomalib  # noqa: E402

from diffad.components.backbone import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, load_backbone  # noqa: E402


def _dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _assert_dependency_order(spec: dict, order: list[str]) -> None:
    stages = bench_pipeline.expanded_stages(spec)
    assert sorted(order) == sorted(stages)
    position = {name: i for i, name in enumerate(order)}
    outs = {n: bench_pipeline._paths(s.get("outs")) for n, s in stages.items()}
    for name, stage in stages.items():
        for dep in bench_pipeline._paths(stage.get("deps")):
            for producer, paths in outs.items():
                if producer != name and any(bench_pipeline._covers(p, dep) for p in paths):
                    assert position[producer] < position[name], (producer, name, dep)


def test_stage_order_of_the_project_puts_every_stage_after_the_stages_it_reads():
    spec = _dvc_yaml()
    order = bench_pipeline.stage_order(spec)
    _assert_dependency_order(spec, order)
    assert order[0] == "convert_dataset" and order[-1] == "evaluate"


def test_stage_order_does_not_trust_the_file_order():
    spec = _dvc_yaml()
    reversed_spec = {"stages": dict(reversed(list(spec["stages"].items())))}
    order = bench_pipeline.stage_order(reversed_spec)
    _assert_dependency_order(spec, order)
    assert order[0] == "convert_dataset" and order[-1] == "evaluate"


def test_stage_order_reports_a_cycle():
    spec = {"stages": {"a": {"deps": ["y"], "outs": ["x"]}, "b": {"deps": ["x/file"], "outs": ["y"]}}}
    with pytest.raises(ValueError, match="cycle"):
        bench_pipeline.stage_order(spec)


def test_covers_is_path_aware():
    assert bench_pipeline._covers("data/scores", "data/scores/train.npz")
    assert bench_pipeline._covers("models/bundle/", "models/bundle")
    assert not bench_pipeline._covers("data/score", "data/scores")


def test_summarize_holds_the_totals_against_the_goals():
    stages = {
        "a": {"seconds": 200.0, "peak_tree_rss_mib": 1000.0, "peak_process_rss_mib": 900.0},
        "b": {"seconds": 150.0, "peak_tree_rss_mib": 5000.0, "peak_process_rss_mib": 4800.0},
    }
    s = bench_pipeline.summarize(stages)
    assert (s["total_seconds"], s["peak_tree_rss_mib"], s["peak_process_rss_mib"]) == (350.0, 5000.0, 4800.0)
    assert not s["meets_seconds"] and not s["meets_memory"]
    assert bench_pipeline.summarize({"a": stages["a"]})["meets_seconds"]


def test_transferred_weights_give_diffads_backbone_features():
    """anomalib's extractor is timm's features_only model: after the transfer its blocks 1 and 2 equal
    diffad's FeatureExtractor on the same image; with timm's random init they do not."""
    features_only = timm.create_model(
        "tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(1, 2)
    ).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    normalized = ((x + 1) / 2 - mean) / std
    ours = FeatureExtractor(blocks=(1, 2), backbone=load_backbone())(x)
    with torch.no_grad():
        before = features_only(normalized)
        taken = peer_anomalib.transfer_by_name(load_backbone().state_dict(), features_only.state_dict())
        features_only.load_state_dict(taken, strict=False)
        after = features_only(normalized)
    assert not torch.allclose(before[0], ours[0], atol=1e-3)
    for mine, theirs in zip(ours, after, strict=True):
        torch.testing.assert_close(theirs, mine, atol=1e-5, rtol=1e-5)


def test_transfer_names_a_missing_or_misshapen_tensor():
    target = {"blocks.0.weight": torch.zeros(3, 3), "bn.num_batches_tracked": torch.tensor(0)}
    with pytest.raises(ValueError, match="'blocks.0.weight' is missing"):
        peer_anomalib.transfer_by_name({}, target)
    with pytest.raises(ValueError, match=r"'blocks.0.weight' has shape \(2, 3\), needs \(3, 3\)"):
        peer_anomalib.transfer_by_name({"blocks.0.weight": torch.zeros(2, 3)}, target)


def test_resize_masks_keeps_every_defect_pixel_and_maps_reach_the_eval_size():
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 1, 2] = True
    big = peer_anomalib.resize_masks(masks, 8)
    assert big.shape == (1, 8, 8) and big.sum() == 4 and big[0, 2:4, 4:6].all()
    maps = peer_anomalib.resize_maps(torch.arange(16.0).view(1, 1, 4, 4), 8)
    assert maps.shape == (1, 8, 8) and maps.dtype == np.float64
    assert peer_anomalib.block_layers((1, 2)) == ["blocks.1", "blocks.2"]


def test_fast_coreset_selects_what_anomalibs_loop_selects():
    """Only where the optional peer extra is installed (never a test dependency)."""
    pytest.importorskip("anomalib")
    from anomalib.models.components.sampling.k_center_greedy import KCenterGreedy

    embedding = torch.randn(3000, 40, 1, generator=torch.Generator().manual_seed(0))  # 3-D: no projection
    torch.manual_seed(1)
    stock = KCenterGreedy(embedding, 0.02).select_coreset_idxs()
    torch.manual_seed(1)
    fast = peer_anomalib.fast_k_center_greedy()(embedding, 0.02).select_coreset_idxs()
    assert fast == stock


def test_random_crops_are_windows_of_their_own_image_and_repeat_with_the_seed():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    crops = denoiser_crops.random_crops(images, side=4, per_image=5, seed=3)
    assert crops.shape == (10, 3, 4, 4)
    for i, crop in enumerate(crops):
        image = images[i // 5]
        windows = image.unfold(1, 4, 1).unfold(2, 4, 1)  # (C, 5, 5, 4, 4): every 4 x 4 window
        assert any(torch.equal(crop, windows[:, r, c]) for r in range(5) for c in range(5)), i
    assert torch.equal(crops, denoiser_crops.random_crops(images, side=4, per_image=5, seed=3))
    assert not torch.equal(crops, denoiser_crops.random_crops(images, side=4, per_image=5, seed=4))
