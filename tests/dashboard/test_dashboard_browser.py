"""End to end in a real browser: `streamlit run` on 127.0.0.1, headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``)
and ``selenium``. With ``DIFFAD_SCREENSHOTS=<folder>`` set, the screenshots of every page are kept
there (``DIFFAD_SCREENSHOTS=docs/screenshots`` refreshes the README's).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fixtures import BEST_IMAGE_AUROC, TEST, WASHER_IMAGE_AUROC
from PIL import Image

from dashboard import screenshot

pytestmark = pytest.mark.slow
LAUNCHER = Path(__file__).with_name("serve_fake_bundle.py")  # streamlit with the fake predictor installed


@pytest.fixture(scope="module")
def browser(fixture_root: Path):
    """(base URL, WebDriver) of the dashboard on the fixture project; both stopped afterwards."""
    missing = browser_missing()
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # CI must run them, never skip
            pytest.fail(f"CI: the browser tests cannot run: {missing}")
        pytest.skip(f"browser tests cannot run: {missing}")
    with screenshot.streamlit_server(fixture_root, launcher=LAUNCHER) as url, screenshot.chromium() as driver:
        yield url, driver


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not screenshot.CHROMIUM.exists() or not screenshot.CHROMEDRIVER.exists():
        return (
            f"{screenshot.CHROMIUM} or {screenshot.CHROMEDRIVER} is absent "
            "(apt-get install -y chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("DIFFAD_SCREENSHOTS") or tmp_path)


def test_overview_renders_the_metrics_table(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, driver = browser
    screenshot.open_page(driver, f"{url}/", '[data-testid="stTable"]')
    text = driver.find_element(By.CSS_SELECTOR, '[data-testid="stTable"]').text
    assert f"{BEST_IMAGE_AUROC[1]:.3f}" in text and f"{max(WASHER_IMAGE_AUROC.values()):.3f}" in text
    assert BEST_IMAGE_AUROC[0] in text and "washer" in text
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAppDeployButton"]')  # issue 23
    shot = screenshot.capture(driver, _shots(tmp_path) / "overview.png")
    assert Image.open(shot).size[0] >= 1000


def test_heatmaps_page_loads_the_images(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, driver = browser
    # the gallery's images, not the colour scale in the (possibly collapsed) sidebar
    gallery = '[data-testid="stMain"] [data-testid="stImage"] img'
    screenshot.open_page(driver, f"{url}/heatmaps", gallery)
    images = driver.find_elements(By.CSS_SELECTOR, gallery)
    widths = [driver.execute_script("return arguments[0].naturalWidth;", img) for img in images]
    assert len(images) == len(TEST) and all(w > 0 for w in widths), widths
    screenshot.capture(driver, _shots(tmp_path) / "heatmaps.png")


def test_inspect_page_scores_an_uploaded_file(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, driver = browser
    screenshot.open_page(driver, f"{url}/inspect", '[data-testid="stFileUploader"]')
    image = tmp_path / "upload.png"
    rgb = np.full((96, 96, 3), 230, np.uint8)
    rgb[30:70, 40:80] = 20  # a dark defect: the fake model's score is the darkness
    Image.fromarray(rgb).save(image)
    screenshot.upload(driver, image)
    metrics = " ".join(m.text for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'))
    assert "Decision" in metrics and "Percentile" in metrics
    screenshot.capture(driver, _shots(tmp_path) / "inspect.png")


@pytest.mark.parametrize("page", ["curves", "data-quality", "runs"])
def test_other_pages_render(browser, tmp_path: Path, page: str) -> None:
    from selenium.webdriver.common.by import By

    url, driver = browser
    path, selector = screenshot.PAGES[page]
    screenshot.open_page(driver, f"{url}/{path}", selector)
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    screenshot.capture(driver, _shots(tmp_path) / f"{page}.png")
