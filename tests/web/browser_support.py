"""Headless Chromium for the browser tests: the Debian chromium + chromium-driver, no downloads,
and a live network (Mosquitto, hub, simulated makers) whose dashboard the browser visits."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from fabnet.sim.makers import SimMachine, SimMaker

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install chromium chromium-driver (make test installs them)"
WINDOW = (1280, 900)
PASSWORD = "correct horse battery"

# ada: two PLA printers that take any offer; bruno: one PETG printer that asks him first.
BROWSER_MAKERS: tuple[SimMaker, ...] = (
    SimMaker(
        "ada",
        (
            SimMachine("mk3s-1", "prusa_mk3s", "PLA", ("PLA",)),
            SimMachine("voron-1", "voron24_350", "PLA", ("PLA",)),
        ),
    ),
    SimMaker("bruno", (SimMachine("ender3-petg", "creality_ender3", "PETG", ("PETG",)),)),
)
ASK_FIRST = ("bruno", "ender3-petg")


def ask_first(config: Path, machine: str) -> None:
    """Turn ``auto_accept`` off for ``machine`` in a generated agent config."""
    text = config.read_text()
    head, sep, rest = text.partition(f'id = "{machine}"')
    assert sep, f"{machine} not in {config}"
    config.write_text(head + sep + rest.replace("auto_accept = true", "auto_accept = false", 1))


def chrome(tmp_path: Path) -> WebDriver:
    """A fresh headless Chromium; fails (never skips) when the Debian packages are missing."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            raise AssertionError(f"{path} not found: {INSTALL_HINT}")
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must not try to download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={tmp_path}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    # the viewport itself 1280x900, whatever the headless window's frame takes
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def log_in(driver: WebDriver, base: str, name: str) -> None:
    """Log out whoever is logged in, then log in as ``name`` through the form."""
    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    wait(lambda: driver.find_elements(By.ID, "user-name"), 10, f"{name} to be logged in")
    assert driver.find_element(By.ID, "user-name").text == name


def wait(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` every 0.2 s until truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except StaleElementReferenceException:
            value = None  # the page replaced the element while we read it: look again
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


# not FABNET_*: the config loader refuses FABNET_ variables it does not know, and this one is
# the test's, not fabnet's
SCREENSHOTS_VARIABLE = "SCREENSHOTS_DIR"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshots_folder(tmp_path: Path, environ: Mapping[str, str]) -> Path:
    """Where the pictures go: ``$SCREENSHOTS_DIR`` when set (``make screenshots``),
    else a folder inside the test's ``tmp_path``."""
    named = environ.get(SCREENSHOTS_VARIABLE)
    return Path(named).resolve() if named else tmp_path / "screenshots"


def screenshot(driver: WebDriver, folder: Path, name: str) -> Path:
    """Save the page as ``<folder>/<name>.png`` (the whole 1280x900 window)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not write {path}"
    return path


def job_id_in(url: str) -> str:
    found = re.search(r"/jobs/([0-9a-f]+)$", url)
    assert found, f"not a job page: {url}"
    return found.group(1)


def chromium_missing() -> bool:
    return shutil.which("chromium") is None


@contextmanager
def chrome_session(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium for one test, quit afterwards (its profile under ``tmp_path``)."""
    driver = chrome(tmp_path / "chrome")
    try:
        yield driver
    finally:
        driver.quit()
