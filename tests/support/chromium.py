"""Headless Chromium for the explainer page: Debian's chromium and chromium-driver (apt; .ci/run installs them),
driven by selenium (the `browser` extra). Used by tests/test_explainer_browser.py and benchmarks/explainer_page.py."""

import base64
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Headless Chromium in a sandboxed CI container: no GPU, no setuid sandbox, and none of the background requests
# (component updates, sync, QUIC probes) that a closed network refuses and that would show as console errors.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]


class ChromiumMissing(RuntimeError):
    """selenium, chromium or chromedriver is not installed; the message says how to install it."""


@contextmanager
def chromium():
    """A selenium driver of a fresh headless Chromium (its own profile, removed afterwards), logging the console."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise ChromiumMissing("the browser tests need selenium: pip install -e '.[browser]'") from None
    for program in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(program) is None:
            raise ChromiumMissing(f"{program} is missing: apt-get install chromium chromium-driver (as .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="minibert-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def severe(driver) -> list[str]:
    """The console errors (and uncaught exceptions) logged since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_page(driver, path: Path, tab: str = "head", bound_seconds: float = 60) -> float:
    """Load the page and wait until its script has drawn every view; returns the milliseconds from the start of
    navigation to the end of drawing, as the page measured them (performance.now())."""
    driver.get("about:blank")  # so that loading the same page again is a fresh load, not a jump to an anchor
    start = time.perf_counter()
    driver.get(f"{Path(path).as_uri()}#{tab}")
    while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
        errors = severe(driver)
        assert not errors, errors
        assert time.perf_counter() - start < bound_seconds, f"{Path(path).name} did not finish drawing"
        time.sleep(0.05)
    return float(driver.execute_script("return document.body.dataset.drawnMs"))


def screenshot(driver, element, path: Path) -> Path:
    """The whole element, beyond the window if it is taller, as a PNG file."""
    x, y, w, h = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]",
        element,
    )
    clip = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
