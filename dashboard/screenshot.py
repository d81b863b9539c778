"""Screenshots of every dashboard page, taken in headless Chromium driven by Selenium.

    python dashboard/screenshot.py --root . --out docs/screenshots

Starts ``streamlit run dashboard/app.py`` on a free port of 127.0.0.1 with ``DIFFAD_ROOT=--root``,
waits for each page's main element (Streamlit renders over a websocket, so a plain
``chromium --screenshot`` captures a blank page) and saves ``<out>/<page>.png``. Needs Debian's
``chromium`` and ``chromium-driver`` and the ``selenium`` package (dev extra). The browser test in
tests/dashboard uses the same helpers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[1]
APP = CODE_ROOT / "dashboard" / "app.py"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
# page -> (URL path, CSS selector of the element that shows the page has rendered)
PAGES = {
    "overview": ("", '[data-testid="stTable"]'),
    "curves": ("curves", '[data-testid="stVegaLiteChart"]'),
    "heatmaps": ("heatmaps", '[data-testid="stImage"] img'),
    "operating-point": ("operating-point", '[data-testid="stSlider"], [data-testid="stAlert"]'),
    "inspect": ("inspect", '[data-testid="stFileUploader"], [data-testid="stAlert"]'),
    "data-quality": ("data-quality", '[data-testid="stDataFrame"], [data-testid="stAlert"]'),
    "review": ("review", '[data-testid="stDataFrame"], [data-testid="stAlert"]'),
    "monitoring": ("monitoring", '[data-testid="stVegaLiteChart"], [data-testid="stAlert"]'),
    "runs": ("runs", '[data-testid="stAlert"], [data-testid="stDataFrame"]'),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_server(
    root: Path, *, port: int | None = None, timeout: float = 60.0, launcher: Path | None = None
) -> Iterator[str]:
    """Run the dashboard on ``root``; yields its base URL; stops the server on exit.

    ``launcher``: a script to run instead of ``python -m streamlit`` (same arguments), e.g. one that
    installs a stand-in model first.
    """
    port = port or free_port()
    start = [sys.executable, str(launcher)] if launcher else [sys.executable, "-m", "streamlit"]
    cmd = [
        *start,
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        cmd, cwd=CODE_ROOT, env={**os.environ, "DIFFAD_ROOT": str(root)}, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(
                    f"streamlit did not start on {url}:\n{log.read().decode(errors='replace')}"
                )
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A headless Chromium WebDriver; quits the browser and removes its profile on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="diffad-chromium-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, url: str, selector: str, timeout: float = 60.0) -> None:
    """Load ``url`` and wait until ``selector`` is shown and the script has finished running."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))
    wait.until_not(
        ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="stStatusWidgetRunningIcon"]'))
    )
    wait.until(
        lambda d: d.execute_script(  # every image decoded (or failed), so the screenshot is complete
            "return Array.from(document.images).every(i => i.complete);"
        )
    )
    time.sleep(0.5)  # let charts finish their transitions


def upload(driver, image: Path, timeout: float = 60.0) -> None:
    """Upload ``image`` on the Inspect page and wait for its result (metrics or an error)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, 'input[type="file"]').send_keys(str(Path(image).resolve()))
    wait = WebDriverWait(driver, timeout)
    wait.until(
        ec.visibility_of_element_located(
            (By.CSS_SELECTOR, '[data-testid="stMetric"], [data-testid="stAlertContentError"]')
        )
    )
    wait.until_not(
        ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="stStatusWidgetRunningIcon"]'))
    )
    wait.until(lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete);"))
    time.sleep(1.0)  # the histogram draws after the images


def capture(driver, path: Path) -> Path:
    """Save the whole page (not only the window) as a PNG."""
    height = driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        "return Math.max(m.scrollHeight, document.body.scrollHeight);"
    )
    size = driver.get_window_size()
    driver.set_window_size(size["width"], min(max(int(height) + 120, 600), 4000))
    time.sleep(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
    return path


def screenshot_pages(
    root: Path,
    out: Path,
    pages: Sequence[str] = tuple(PAGES),
    *,
    image: Path | None = None,
    launcher: Path | None = None,
) -> list[Path]:
    """Save ``<out>/<page>.png`` for each page; on Inspect, upload ``image`` first when given."""
    saved = []
    with streamlit_server(root, launcher=launcher) as url, chromium() as driver:
        for name in pages:
            path, selector = PAGES[name]
            open_page(driver, f"{url}/{path}", selector)
            if name == "inspect" and image is not None:
                upload(driver, image)
            saved.append(capture(driver, out / f"{name}.png"))
    return saved


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project folder with the artifacts")
    parser.add_argument("--out", type=Path, default=CODE_ROOT / "docs" / "screenshots")
    parser.add_argument("--pages", nargs="+", choices=list(PAGES), default=list(PAGES))
    parser.add_argument("--upload", type=Path, help="image to score on the Inspect page")
    args = parser.parse_args(argv)
    for path in screenshot_pages(args.root.resolve(), args.out, args.pages, image=args.upload):
        print(path)


if __name__ == "__main__":
    main()
