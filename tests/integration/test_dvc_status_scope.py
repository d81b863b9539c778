"""An edit re-runs only the stages that compute with what was edited: DVC itself says so.

Each case edits one file of a copy of the reproduced tiny project and asks ``dvc status`` which
stages changed. Editing the served method, a metric or the dashboard fits nothing again; editing
one method's code re-fits that method only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import copy_project, dvc

pytestmark = pytest.mark.slow

EDITS = {  # file -> the stages DVC must report changed, and no other
    "src/diffad/inference/serving.py": {"evaluate"},
    "src/diffad/metrics/roc.py": {"evaluate"},
    "dashboard/app.py": set(),
    "src/diffad/methods/patchcore/model.py": {"fit@patchcore", "evaluate"},
    "src/diffad/methods/msma_gmm/mixture.py": {"fit@msma_gmm", "evaluate"},
    # components/ is shared by every method: each fitting stage depends on all of it
    "src/diffad/components/denoiser/unet.py": {"train_denoiser", "score_norms", "evaluate"}
    | {f"fit@{m}" for m in ("msma_gmm", "msma_flow", "msma_features", "patchcore", "padim")},
}


def changed_stages(project: Path) -> set[str]:
    status = json.loads(dvc(project, "status", "--json").stdout or "{}")
    return {name.rpartition(":")[2] for name in status}


@pytest.fixture(scope="module")
def project(reproduced_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = copy_project(reproduced_project, tmp_path_factory.mktemp("scope") / "project")
    assert changed_stages(copy) == set()
    return copy


@pytest.mark.parametrize("edited", sorted(EDITS))
def test_an_edit_changes_only_the_stages_that_compute_with_it(project: Path, edited: str) -> None:
    path = project / edited
    before = path.read_bytes()
    path.write_bytes(before + b"\n# an edit\n")
    try:
        assert changed_stages(project) == EDITS[edited]
    finally:
        path.write_bytes(before)


def test_bytecode_beside_the_code_changes_no_stage(project: Path) -> None:
    """Python writes __pycache__ into the folders the stages depend on (unless told not to):
    .dvcignore keeps it out of their hashes, so a run leaves dvc.lock as committed."""
    cache = project / "src/diffad/components/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "detector.cpython-311.pyc").write_bytes(b"bytecode")
    assert changed_stages(project) == set()
