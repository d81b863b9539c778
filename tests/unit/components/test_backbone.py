"""The offline EfficientNet-Lite0 backbone: strict weight mapping, ImageNet sanity, feature geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffad.components import backbone as bb
from diffad.components.backbone import FeatureExtractor, load_backbone, map_state_dict, weights_path
from diffad.core.errors import ArtifactError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_backbone()


def source_tensors() -> list[torch.Tensor]:
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    return [v for k, v in state.items() if not k.endswith("num_batches_tracked")]


def test_every_weight_comes_from_the_package_file(model):
    source = source_tensors()
    loaded = [v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(source) == len(loaded) == bb.NUM_TENSORS
    assert all(torch.equal(s, t) for s, t in zip(source, loaded, strict=True))
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training


def test_planted_shape_mismatch_raises(tmp_path: Path):
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    key = "_blocks.3._project_conv.weight"
    state[key] = state[key][:-1]  # one output channel short
    target = bb.timm.create_model(bb.TIMM_NAME, pretrained=False).state_dict()
    with pytest.raises(ArtifactError, match="_project_conv"):
        map_state_dict(state, target)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ArtifactError, match="bad.pth"):
        load_backbone(path=bad)


def test_missing_tensor_or_package_raises(monkeypatch):
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state.pop("_fc.bias")
    target = bb.timm.create_model(bb.TIMM_NAME, pretrained=False).state_dict()
    with pytest.raises(ArtifactError, match="246 tensors"):
        map_state_dict(state, target)
    monkeypatch.setattr(bb, "WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(ArtifactError, match="no_such_weights_package"):
        load_backbone()


@pytest.mark.parametrize(
    ("photo", "classes"),
    [("chelsea.png", range(281, 286)), ("coffee.png", (504, 967, 968))],  # cats; mug/espresso/cup
)
def test_natural_photo_gets_a_sensible_imagenet_class(model, photo, classes):
    skimage = pytest.importorskip("skimage")
    path = Path(skimage.__file__).parent / "data" / photo
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1  # [-1, 1]
    extractor = FeatureExtractor(blocks=(6,), input_size=224, backbone=model)
    with torch.inference_mode():
        probs = extractor.classify(x).softmax(dim=1)[0]
    assert int(probs.argmax()) in classes
    assert float(probs.max()) > 0.5


@pytest.mark.parametrize(("input_size", "side"), [(224, 224), (None, 64)])
def test_feature_shapes_follow_the_strides(model, input_size, side):
    extractor = FeatureExtractor(blocks=(0, 1, 2, 4, 6), input_size=input_size, backbone=model)
    with torch.inference_mode():
        features = extractor(torch.zeros(2, 3, 64, 64))
    shapes = [tuple(f.shape) for f in features]
    strides = (2, 4, 8, 16, 32)
    assert shapes == [
        (2, c, side // s, side // s) for c, s in zip((16, 24, 40, 112, 320), strides, strict=True)
    ]
    assert extractor.channels == (16, 24, 40, 112, 320)


def test_later_blocks_are_not_computed(model):
    called = []
    hooks = [
        blk.register_forward_hook(lambda *_, i=i: called.append(i)) for i, blk in enumerate(model.blocks)
    ]
    try:
        FeatureExtractor(blocks=(1, 2), backbone=model)(torch.zeros(1, 3, 32, 32))
    finally:
        for hook in hooks:
            hook.remove()
    assert called == [0, 1, 2]


def test_extractor_stays_frozen_in_train_mode(model):
    extractor = FeatureExtractor(blocks=(2,), backbone=model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    before = extractor(x)[0].detach()
    extractor.train()
    after = extractor(torch.cat([x, -x]))[0][:2]  # batch statistics would change the output
    assert torch.allclose(before, after, atol=1e-5)
    assert not model.training


@pytest.mark.parametrize("border_pad", [0, 32])
def test_border_pad_keeps_the_grid_and_removes_the_zero_padding_frame(model, border_pad):
    # A uniform image has the same content everywhere: only the convolutions' zero padding can
    # make its border cells differ from its centre cells.
    extractor = FeatureExtractor(blocks=(1, 2), input_size=128, backbone=model, border_pad=border_pad)
    with torch.inference_mode():
        features = extractor(torch.full((1, 3, 64, 64), 0.3))
    assert [tuple(f.shape[-2:]) for f in features] == [(32, 32), (16, 16)]
    for f in features:
        centre = f[..., f.shape[-2] // 2, f.shape[-1] // 2].unsqueeze(-1).unsqueeze(-1)
        spread = float((f - centre).abs().amax() / centre.abs().amax())
        if border_pad:
            assert spread < 0.01  # what is left: the deepest cells see past 32 px of padding
        else:
            assert spread > 0.05  # the frame this option removes


def test_border_pad_rounds_up_to_the_deepest_stride(model):
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        a = FeatureExtractor(blocks=(1, 2), input_size=64, backbone=model, border_pad=5)(x)
        b = FeatureExtractor(blocks=(1, 2), input_size=64, backbone=model, border_pad=8)(x)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
