"""convert_dataset: raw images (demo, MVTec AD layout or one-class folder) -> prepared dataset.

Writes the prepared images, masks and ``manifest.csv`` to ``--out``, then validates the manifest
with the Great Expectations suite; the validation result goes to ``--report`` either way, and a
failed validation fails the stage so nothing downstream trains on bad data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from diffad.cli import run_command
from diffad.data.prepare import prepare_dataset
from diffad.data.validation import validate_prepared
from diffad.errors import ValidationFailed
from stages._stage import load_stage_params, stage_parser

log = logging.getLogger("diffad.convert_dataset")


def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/prepared"), help="prepared dataset folder")
    parser.add_argument(
        "--report", type=Path, default=Path("reports/validation"), help="validation report folder"
    )
    args = parser.parse_args(argv)
    params = load_stage_params(args)

    prepared = prepare_dataset(params.data, params.convert_dataset, params.seed, args.out)
    log.info("%s", prepared)
    validation = validate_prepared(args.out, params.convert_dataset, params.data.resolution)
    validation.write(args.report)
    if not validation.success:
        raise ValidationFailed(f"data validation failed for {args.out}:\n{validation.summary()}")
    log.info("data validation passed (%s)", args.report)


if __name__ == "__main__":
    run_command(main)
