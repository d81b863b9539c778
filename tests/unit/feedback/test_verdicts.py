"""The verdict file: append-only whole rows under concurrency, schema on write, latest row wins."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffad.data.transforms import prepare_mask
from diffad.feedback.store import FeedbackStore, mask_to_source
from diffad.feedback.verdicts import FeedbackError, effective_verdicts, read_verdicts


def _image(path: Path, seed: int, size=(20, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)).save(path)
    return path


def _mark_many(root: str, image: str, reviewer: str, n: int) -> None:
    store = FeedbackStore(Path(root))
    for i in range(n):
        store.record("c", reviewer=reviewer, verdict=("good", "unsure")[i % 2], image=Path(image))


def test_two_sessions_appending_at_once_give_whole_rows(tmp_path: Path) -> None:
    image = _image(tmp_path / "a.png", 0)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_mark_many, args=(str(tmp_path / "fb"), str(image), name, 40))
        for name in ("ana", "bo")
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    rows = read_verdicts(tmp_path / "fb/c.jsonl")  # every line parses and passes the schema
    assert len(rows) == 80 and {r.reviewer for r in rows} == {"ana", "bo"}
    assert {key: row.verdict for key, (_, row) in effective_verdicts(rows).items()} == {
        ("ana", rows[0].image_sha256): "unsure",
        ("bo", rows[0].image_sha256): "unsure",
    }


def test_a_bad_verdict_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb")
    image = _image(tmp_path / "a.png", 1)
    with pytest.raises(FeedbackError, match="verdict 'broken'"):
        store.record("c", reviewer="ana", verdict="broken", image=image)
    with pytest.raises(FeedbackError, match="defect_type"):
        store.record("c", reviewer="ana", verdict="defect", defect_type="a/b", image=image)
    with pytest.raises(FeedbackError, match="reviewer"):
        store.record("c", reviewer="  ", verdict="good", image=image)
    assert not (tmp_path / "fb/c.jsonl").exists()


def test_a_truncated_last_row_is_an_error_and_blocks_appending(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb")
    image = _image(tmp_path / "a.png", 2)
    store.record("c", reviewer="ana", verdict="good", image=image)
    path = tmp_path / "fb/c.jsonl"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(FeedbackError, match=r"c\.jsonl:1"):
        read_verdicts(path)
    with pytest.raises(FeedbackError, match="newline"):
        store.record("c", reviewer="ana", verdict="defect", image=image)


@pytest.mark.parametrize("transform", ["center-crop-dhariwal", "resize"])
@pytest.mark.parametrize("size", [(48, 32), (32, 48), (16, 16), (100, 40)])
def test_an_accepted_mask_goes_back_to_the_source_geometry(transform: str, size: tuple[int, int]) -> None:
    """mask_to_source inverts prepare_mask: re-preparing the source-size mask gives the map's mask."""
    mask = np.zeros((16, 16), bool)
    mask[3:9, 5:13] = True
    source = mask_to_source(mask, size, transform)
    assert source.size == size and set(np.unique(np.asarray(source))) <= {0, 255}
    again = np.asarray(prepare_mask(source, 16, transform)) > 0
    assert (again != mask).sum() <= 0.1 * mask.sum()
