"""A `dvc repro` that the data gate rejects leaves the prepared dataset as it was.

DVC deletes a stage's outputs before it runs the command, so convert_dataset's own
staging-then-swap cannot keep `data/prepared` unless the output is declared ``persist``: without
it, a verdict that leaks a test image into training left the project with no dataset at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from diffad.feedback.store import FeedbackStore
from tests.integration.conftest import copy_project, dvc

pytestmark = pytest.mark.slow


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_a_rejected_repro_leaves_the_prepared_dataset_byte_identical(
    reproduced_project: Path, tmp_path: Path
) -> None:
    project = copy_project(reproduced_project, tmp_path / "project")
    prepared = project / "data" / "prepared"
    before = tree_digest(prepared)
    test_image = next((prepared / "images" / "test" / "good").glob("*.png"))
    category = json.loads((prepared / "info.json").read_text())["category"]
    FeedbackStore(project / "data" / "feedback").record(
        category, reviewer="qa", verdict="good", image=test_image
    )

    result = dvc(project, "repro", "convert_dataset", check=False)

    assert result.returncode != 0
    assert "feedback_leak" in result.stdout + result.stderr
    assert prepared.is_dir(), "the rejected run deleted data/prepared"
    assert tree_digest(prepared) == before
    assert dvc(project, "status", "convert_dataset").stdout.count("data/feedback") == 1  # still to do
