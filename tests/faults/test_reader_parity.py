"""One reader: convert_dataset, `diffad predict` and the dashboard upload see the same pixels (issue 11, 2).

Scores from the three paths on a real bundle: tests/integration/test_dvc_pipeline.py.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dashboard.upload import read_upload
from diffad.data.dataset import load_prepared
from diffad.data.images import read_image
from diffad.data.prepare import prepare_dataset
from diffad.data.settings import ConvertDatasetSettings, DataSettings
from diffad.inference.predictor import Predictor
from tests.faults.awkward import awkward_images

RESOLUTION = 16


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parity") / "raw"
    awkward_images(root / "train" / "good", np.random.default_rng(0))
    (root / "test" / "good").mkdir(parents=True)
    noise = np.random.default_rng(1).integers(0, 256, (20, 20, 3), np.uint8)
    Image.fromarray(noise).save(root / "test" / "good" / "x.png")
    return root


def test_convert_predict_and_upload_give_identical_tensors(source, tmp_path):
    data = DataSettings(source="folder", path=str(source), category="parity", resolution=RESOLUTION)
    prepare_dataset(
        data,
        ConvertDatasetSettings(
            min_train_images=1, min_test_images=1, calibration_fraction=0.0, min_calibration_images=0
        ),
        0,
        tmp_path / "p",
    )
    dataset = load_prepared(tmp_path / "p")
    predictor = Predictor(None, {"methods": [], "resolution": RESOLUTION, "transform": data.transform}, {})
    rows = dataset.rows(split="train")
    assert len(rows) == 9
    for (_, row), converted in zip(rows.iterrows(), dataset.images(rows), strict=True):
        path = source / row.source_path
        predicted = predictor.prepare(read_image(path)).x[0]
        uploaded, problem = read_upload(path.name, path.read_bytes())
        assert problem is None, problem
        shown = predictor.prepare(uploaded).x[0]
        assert torch.equal(converted, predicted), path.name
        assert torch.equal(converted, shown), path.name


def bomb_png(side: int) -> bytes:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (a decompression bomb's header)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", side, side)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC over type + data
    return bytes(data)


@pytest.mark.parametrize("side", [12_000, 20_000])  # above PIL's warning and its error limit
def test_upload_reports_a_decompression_bomb_as_too_large(side):
    image, problem = read_upload("bomb.png", bomb_png(side))
    assert image is None and "too large" in problem and "decompression bomb" in problem
    assert "really a PNG" not in problem
