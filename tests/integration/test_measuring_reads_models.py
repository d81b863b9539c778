"""Measuring never changes the models it measures (issue 12): `evaluate` returns what it fitted for
serving (standardisation statistics, the composites' state) and the served models are built from
it; the ``Models`` it was given are as before, and the bundle serves what the evaluation measured."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_evaluate_leaves_the_models_it_is_given_unchanged(reproduced_project) -> None:
    from diffad.components.score_norms import load_score_cache
    from diffad.config import load_params
    from diffad.data.dataset import load_prepared
    from diffad.evaluation.evaluate import evaluate
    from diffad.inference.models import Models

    project = reproduced_project
    params = load_params(project / "params.yaml", ["evaluate.methods=[msma_gmm,ensemble,padim]"])
    paths = {
        "denoiser.safetensors": project / "models/denoiser/denoiser.safetensors",
        "gmm.json": project / "models/methods/msma_gmm/gmm.json",
        "flow.safetensors": project / "models/methods/msma_flow/flow.safetensors",
        "padim.safetensors": project / "models/methods/padim/padim.safetensors",
    }
    models = Models(params=params, paths=paths, device="cpu")
    state = {k: v for k, v in vars(models).items() if k != "_cache"}
    dataset = load_prepared(project / "data/prepared")
    image_norms, patch_norms, _ = load_score_cache(project / "data/score_norms")

    result = evaluate(dataset, models, (image_norms, patch_norms), params)

    assert {k: v for k, v in vars(models).items() if k != "_cache"} == state
    assert set(result.calibration.standardizers) == {"msma_gmm", "msma_flow", "ddim", "padim"}
    served = models.with_calibration(result.calibration)
    images = dataset.images(dataset.manifest.iloc[result.test_rows[:4]])
    rows = result.test_rows[:4]
    again = served.score(images, ("ensemble",), norms=(image_norms[rows], patch_norms[rows]))
    # 4 images in one batch vs evaluate's 64-image chunks: float32 sums round differently
    np.testing.assert_allclose(
        again["ensemble"].scores, result.outputs["ensemble"].scores[:4], rtol=1e-4, atol=1e-5
    )
    with pytest.raises(Exception, match="calibration"):
        models.score(images, ("ensemble",))  # the unserved models know no calibration
