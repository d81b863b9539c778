"""A bundle is whole or refused (issue 21, cases 1, 2, 6, 10): every file's sha256 in bundle.json,
checked on load; one id for the whole bundle; published in one atomic step; loaded once.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from diffad import cli
from diffad.artifacts.layout import BundleDir
from diffad.core.errors import ArtifactError
from diffad.inference.predictor import Predictor
from diffad.inference.scores_log import bundle_id, read_scores_log
from tests.faults.bundles import images, publish
from tests.faults.conftest import noise, save


def _current(root: Path) -> Path:
    return BundleDir(root).manifest.parent


def _predict_args(image: Path, bundle: Path, out: Path, log: Path) -> list[str]:
    return ["predict", str(image), "--bundle", str(bundle), "--method", "padim", "--out", str(out),
            "--scores-log", str(log), "--threads", "1"]  # fmt: skip


def _flip_byte(path: Path, offset: int) -> None:
    """Flip one byte of ``path`` in place (what a bad disk or a careless edit does)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))


def test_the_manifest_records_the_sha256_of_every_file_it_holds(bundle):
    import hashlib

    folder = _current(bundle)
    files = json.loads((folder / "bundle.json").read_text())["files"]
    on_disk = {p.name for p in folder.iterdir() if p.name != "bundle.json"}
    assert set(files) == on_disk == {"padim.safetensors"}
    for name, digest in files.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest


def test_one_flipped_byte_in_the_weights_is_refused_naming_the_file(bundle, tmp_path, capsys):
    weights = _current(bundle) / "padim.safetensors"
    _flip_byte(weights, weights.stat().st_size - 5)  # inside the tensor data: loads, scores NaN or junk
    with pytest.raises(ArtifactError, match=r"padim\.safetensors: sha256 .* differs"):
        Predictor.load(bundle, "cpu")
    image = save(noise(0, (16, 16)), tmp_path / "in" / "a.png")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(_predict_args(image, bundle, tmp_path / "out", tmp_path / "log"))
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "padim.safetensors" in err and "Traceback" not in err
    assert not (tmp_path / "log").exists()  # nothing logged under the bundle's id


def test_the_bundle_id_covers_the_weights_not_only_the_manifest(models, tmp_path):
    """Two bundles with the same manifest values but different weights have different ids."""
    a, b = tmp_path / "a", tmp_path / "b"
    publish(models[0], a)
    publish(models[1], b)
    assert bundle_id(a) != bundle_id(b)
    assert Predictor.load(a, "cpu").bundle_id == bundle_id(a)


@pytest.mark.parametrize(
    "key,value,named",
    [
        ("threshold", "abc", "thresholds.padim.threshold"),
        ("threshold", float("nan"), "thresholds.padim.threshold"),
        ("resolution", 100000, "resolution"),
        ("resolution", "32", "resolution"),
        ("category", "../../escape", "category"),
        ("category", "{tmp}/escape", "category"),
        ("good_scores", ["a"], "thresholds.padim.good_scores[0]"),
    ],
)
def test_a_bad_manifest_value_is_one_line_naming_the_file_and_key(
    bundle, key, value, named, tmp_path, capsys
):
    manifest = _current(bundle) / "bundle.json"
    meta = json.loads(manifest.read_text())
    if key in ("threshold", "good_scores"):
        meta["thresholds"]["padim"][key] = value
    else:
        meta[key] = value.replace("{tmp}", str(tmp_path)) if isinstance(value, str) else value
    manifest.write_text(json.dumps(meta))
    image = save(noise(0, (16, 16)), tmp_path / "in" / "a.png")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(_predict_args(image, bundle, tmp_path / "out", tmp_path / "log" / "x" / "y"))
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert f"{manifest}: {named}" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "escape").exists() and not (tmp_path / "log" / "escape").exists()


def test_a_version_pointer_out_of_its_folder_is_refused(bundle, tmp_path):
    elsewhere = tmp_path / "v-0123456789abcdef"
    elsewhere.mkdir()
    (bundle / "CURRENT").write_text("../v-0123456789abcdef\n")
    with pytest.raises(ArtifactError, match="CURRENT.*not a version folder"):
        Predictor.load(bundle, "cpu")


def test_a_loaded_bundle_keeps_scoring_with_its_own_files_after_a_swap(models, bundle):
    """Everything is loaded (or held open) at once: swapping bundles in cannot mix them."""
    x = images(7)
    first_id = bundle_id(bundle)
    before = Predictor.load(bundle, "cpu")
    expected = Predictor.load(bundle, "cpu").models.score(x, ("padim",))["padim"].scores
    for shift in (0.5, 1.0, 1.5):  # three newer versions: the one `before` read is pruned
        publish(models[1], bundle, shift=shift)
    assert bundle_id(bundle) != first_id
    got = before.models.score(x, ("padim",))["padim"].scores
    assert np.array_equal(got, expected)


def test_there_is_always_a_whole_bundle_while_one_is_swapped_in(models, bundle):
    stop = threading.Event()
    seen: list[float] = []
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                p = Predictor.load(bundle, "cpu")
                seen.append(p.thresholds["padim"].threshold)
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(6):
            publish(models[i % 2], bundle, shift=0.1 * i)
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    assert seen


def test_predict_logs_the_id_of_the_bundle_it_scored_with(models, bundle, tmp_path, monkeypatch):
    """A swap during a run: decisions are logged under the id and threshold they were made with."""
    from diffad.inference import predict

    loaded_id = bundle_id(bundle)
    loaded_threshold = json.loads(BundleDir(bundle).manifest.read_text())["thresholds"]["padim"]["threshold"]
    original = predict.predict_files

    def swap_then_score(*args, **kwargs):
        publish(models[1], bundle, shift=1.0)  # a promotion while predict runs
        return original(*args, **kwargs)

    monkeypatch.setattr(predict, "predict_files", swap_then_score)
    image = save(noise(0, (16, 16)), tmp_path / "in" / "a.png")
    log = tmp_path / "log"
    predict.main(_predict_args(image, bundle, tmp_path / "out", log)[1:])
    rows = read_scores_log(log / "tiny" / "scores.jsonl")
    assert list(rows["bundle_id"]) == [loaded_id]
    assert list(rows["threshold"]) == [loaded_threshold]
    assert bundle_id(bundle) != loaded_id
