"""``streamlit`` with the fake predictor installed: ``python serve_fake_bundle.py run dashboard/app.py ...``.

The browser test and the README screenshots use it, so the Inspect page can score an upload
without a trained bundle (the real one comes from `dvc repro`).
"""

import sys

from fake_predict import install
from streamlit.web import cli

install()
sys.exit(cli.main())
