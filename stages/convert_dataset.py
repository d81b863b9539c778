"""convert_dataset: raw images (demo, MVTec AD layout or one-class folder) -> prepared dataset.

Prepares the images, masks and ``manifest.csv`` into a staging folder, validates that with the
Great Expectations suite, and only then swaps it in as ``--out``. The validation result goes to
``--report`` either way; a failed validation fails the stage and leaves the previous ``--out``
byte-identical, so nothing downstream trains on rejected data.
"""

from __future__ import annotations

# First: from this import on, the stage dies with its parent (stages/__init__.py).
from stages import load_stage_params, stage_parser

import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.core.command import run_command
from diffad.core.errors import ValidationFailed
from diffad.data.prepare import prepare_dataset
from diffad.data.validation import validate_prepared
from diffad.feedback.dataset import FeedbackInput
from diffad.feedback.validation import with_feedback_checks

log = logging.getLogger("diffad.convert_dataset")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument(
        "--report", type=Path, default=Path("reports/validation"), help="validation report folder"
    )
    parser.add_argument("--feedback", type=Path, default=None, help="reviewers' verdicts (data/feedback)")
    args = parser.parse_args(argv)
    params = load_stage_params(args)
    feedback = None
    if args.feedback is not None:
        feedback = FeedbackInput(args.feedback, params.data.category, params.feedback.good_split)

    def validate(staged: Path) -> None:
        validation = validate_prepared(staged, params.convert_dataset, params.data.resolution, args.out)
        if feedback is not None:  # the verdict file's own checks, in the same report
            validation = with_feedback_checks(validation, feedback, staged)
        validation.write(args.report)
        if not validation.success:
            raise ValidationFailed(
                f"data validation failed; {args.out} left as it was:\n{validation.summary()}"
            )

    prepared = prepare_dataset(
        params.data, params.convert_dataset, params.seed, args.out, check=validate, feedback=feedback
    )
    log.info("%s", prepared)
    log.info("data validation passed (%s)", args.report)


if __name__ == "__main__":
    run_command(main)
