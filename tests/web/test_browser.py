"""The dashboard in real headless Chromium against a live network (Mosquitto, hub, simulated
makers): every role logs in, a requester orders from the library and watches the job finish
without reloading, a maker accepts an offer, the operator's figures move, and a requester is
refused another requester's job. Screenshots of the main pages go to a temporary folder;
``make screenshots`` sets ``$SCREENSHOTS_DIR`` to ``docs/screenshots`` to renew the
pictures the README shows (a plain test run must never rewrite tracked files)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_support import (
    ASK_FIRST,
    BROWSER_MAKERS,
    DOCS_SCREENSHOTS,
    PASSWORD,
    SCREENSHOTS_VARIABLE,
    ask_first,
    chrome,
    job_id_in,
    log_in,
    screenshot,
    screenshots_folder,
    wait,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from fabnet.bus.broker import free_port
from fabnet.core.states import TaskState
from fabnet.hub.service import JobRequest
from fabnet.roots.network import SimNetwork

CUBE = "cube-xyz-20mm"
MARK = "return window.__noReload"
PICTURES = ("library", "design", "job", "overview", "maker", "task")


def _file_states(folder: Path) -> dict[str, tuple[int, int, str]]:
    """(mtime ns, size, sha256) of every PNG in ``folder``: a rewrite changes the mtime even
    when the picture comes out byte-identical."""
    return {
        p.name: (p.stat().st_mtime_ns, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.glob("*.png"))
    }


@dataclass
class Shots:
    """The screenshot folder of one run, and the tracked pictures as they were before it."""

    folder: Path
    docs_before: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    def check(self) -> None:
        """Every picture was taken into ``folder``; unless that is docs/screenshots, the
        tracked pictures are untouched."""
        missing = [n for n in PICTURES if not (self.folder / f"{n}.png").is_file()]
        assert not missing, f"no screenshots {missing} in {self.folder}"
        if self.folder != DOCS_SCREENSHOTS.resolve():
            assert _file_states(DOCS_SCREENSHOTS) == self.docs_before, "docs/screenshots changed"


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(screenshots_folder(tmp_path, os.environ), _file_states(DOCS_SCREENSHOTS))


def test_screenshots_go_to_a_temporary_folder_unless_asked(tmp_path: Path) -> None:
    checkout = DOCS_SCREENSHOTS.parents[1]
    default = screenshots_folder(tmp_path, {})
    assert default.is_relative_to(tmp_path) and not default.resolve().is_relative_to(checkout)
    asked = screenshots_folder(tmp_path, {SCREENSHOTS_VARIABLE: str(DOCS_SCREENSHOTS)})
    assert asked == DOCS_SCREENSHOTS.resolve()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[SimNetwork]:
    net = SimNetwork(
        tmp_path / "net", makers=BROWSER_MAKERS, speed=400.0, http_port=free_port(), lease_s=20.0
    )
    net.start(with_agents=False)
    assert net.files is not None and net.hub is not None
    ask_first(net.files.agent_configs[ASK_FIRST[0]], ASK_FIRST[1])
    now = datetime.now(UTC)
    accounts = net.hub.store.accounts
    accounts.add_user("olga", PASSWORD, ["operator"], now)
    accounts.add_user("rita", PASSWORD, ["requester"], now)
    accounts.add_user("ravi", PASSWORD, ["requester"], now)
    accounts.add_user("bruno", PASSWORD, ["maker"], now, maker_ids=["bruno"])
    for agent_id in net.files.agent_configs:
        net.start_agent(agent_id)
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[tuple[WebDriver, WebDriver]]:
    operator = chrome(tmp_path / "chrome-operator")
    other = chrome(tmp_path / "chrome-other")
    try:
        yield operator, other
    finally:
        operator.quit()
        other.quit()


def _mark_no_reload(driver: WebDriver) -> None:
    driver.execute_script("window.__noReload = 1")


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def test_dashboard_end_to_end(
    network: SimNetwork, browsers: tuple[WebDriver, WebDriver], shots: Shots
) -> None:
    started = time.monotonic()
    assert network.hub is not None
    base = network.hub.public_url
    store = network.hub.store
    watch, browser = browsers

    # the operator watches the overview from the start
    log_in(watch, base, "olga")
    wait(lambda: store.catalog.list_machines(), 15, "the makers' machines to report")
    watch.get(f"{base}/")
    grams_before = _text(watch, "grams-total")
    _mark_no_reload(watch)

    # a requester orders two cubes from the library and follows the job live
    log_in(browser, base, "rita")
    browser.get(f"{base}/designs")
    wait(
        lambda: browser.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        ),
        20,
        "every thumbnail to load",
    )
    screenshot(browser, shots.folder, "library")
    browser.get(f"{base}/designs/faceshield-frame-short")  # a remix: its lineage shows
    parent = browser.find_elements(By.CSS_SELECTOR, '#lineage a[href="/designs/faceshield-frame"]')
    assert parent, "the remix's parent is not linked in its lineage"
    screenshot(browser, shots.folder, "design")
    browser.get(f"{base}/designs")
    browser.find_element(By.CSS_SELECTOR, f'a[data-slug="{CUBE}"]').click()
    wait(lambda: browser.find_elements(By.ID, "request-form"), 10, "the design page")
    quantity = browser.find_element(By.ID, "quantity")
    quantity.clear()
    quantity.send_keys("2")
    Select(browser.find_element(By.ID, "material")).select_by_visible_text("PLA")
    Select(browser.find_element(By.ID, "quality")).select_by_visible_text("draft")
    browser.find_element(By.ID, "request-submit").click()
    wait(lambda: "/jobs/" in browser.current_url, 10, "the job page")
    job_id = job_id_in(browser.current_url)
    assert store.jobs.get(job_id).spec.requester == "rita"
    _mark_no_reload(browser)
    first_text = _text(browser, "job-progress-text")
    wait(lambda: _text(browser, "job-state") == "done", 60, "the job to be done on its page")
    assert browser.execute_script(MARK) == 1, "the job page reloaded"
    assert _text(browser, "job-progress-text") != first_text
    assert _text(browser, "job-progress-text").startswith("2/2 done")
    makers = {e.text for e in browser.find_elements(By.CSS_SELECTOR, 'td[data-live$=".maker"]')}
    assert makers == {"ada"}
    time.sleep(0.7)  # let the bars' CSS transition settle for the picture
    screenshot(browser, shots.folder, "job")

    # the operator's figures moved without a reload
    wait(lambda: _text(watch, "grams-total") != grams_before, 10, "the grams total to change")
    assert watch.execute_script(MARK) == 1, "the overview reloaded"
    band = watch.find_elements(By.CSS_SELECTOR, '#production-chart polygon[data-key="PLA"]')
    assert band, "no PLA band in the production chart"
    screenshot(watch, shots.folder, "overview")

    # another requester's PETG job is offered to bruno's ask-first printer; bruno accepts
    other = network.hub.service.submit(
        JobRequest(design=CUBE, quantity=1, material="PETG", quality="draft", requester="ravi")
    )
    other_id = other.spec.job_id
    (task,) = store.tasks.find(job_id=other_id)
    log_in(browser, base, "bruno")

    def offer_shown() -> bool:
        browser.get(f"{base}/maker")
        return bool(browser.find_elements(By.CSS_SELECTOR, f'button[data-accept="{task.task_id}"]'))

    wait(offer_shown, 30, "the offer on bruno's maker page")
    assert store.tasks.get(task.task_id).state is TaskState.OFFERED
    screenshot(browser, shots.folder, "maker")
    browser.find_element(By.CSS_SELECTOR, f'button[data-accept="{task.task_id}"]').click()
    wait(lambda: store.tasks.get(task.task_id).state is TaskState.DONE, 40, "the accepted task")
    attempts = store.tasks.get(task.task_id).attempts
    assert [a.machine_id for a in attempts] == ["bruno/ender3-petg"]

    # the task page: layer preview with a working slider, analysis, safety check
    browser.get(f"{base}/tasks/{task.task_id}")
    wait(lambda: browser.find_elements(By.ID, "layer-slider"), 10, "the layer slider")
    assert "Passes the safety check" in _text(browser, "safety")
    before = browser.find_element(By.CSS_SELECTOR, "#layer-view svg").get_attribute("data-layer")
    browser.execute_script(
        "const s = document.getElementById('layer-slider'); s.value = 2;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait(
        lambda: (
            browser.find_element(By.CSS_SELECTOR, "#layer-view svg").get_attribute("data-layer")
            == "2"
        ),
        10,
        "layer 2 to be drawn",
    )
    assert before != "2"
    browser.execute_script(
        "const s = document.getElementById('layer-slider'); s.value = Math.floor(s.max / 2);"
        "s.dispatchEvent(new Event('input'));"
    )
    time.sleep(0.5)
    screenshot(browser, shots.folder, "task")

    # a requester cannot open another requester's job
    log_in(browser, base, "rita")
    browser.get(f"{base}/jobs/{other_id}")
    assert _text(browser, "error-code") == "403"
    browser.get(f"{base}/jobs/{job_id}")
    assert _text(browser, "job-state") == "done"

    shots.check()
    elapsed = time.monotonic() - started
    assert elapsed < 90, f"the browser scenario took {elapsed:.0f} s (budget 90 s)"
