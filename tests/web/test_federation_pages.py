"""Federation on the dashboard in real headless Chromium (issue 12): an operator adds a peer hub
through the form (a bad URL is refused by name), pauses and resumes it; a part made at peer
hub beta shows as "made at hub beta" on its job and task pages and counts in the overview's
production, and beta's balance shows what this hub owes it; a job a peer hub asked for shows
"for hub gamma" and is listed among the foreign tasks made here. The parts are made by
applying the core's events through the store (our own code, no machines)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub, complete_on, serving
from browser_support import chrome_session, log_in, screenshot, screenshots_folder, wait
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from fabnet.federation import wire
from fabnet.federation.keys import HubKey
from fabnet.federation.settlement import peer_balances, settle_peer_work
from fabnet.store.peer_reports import ensure_peer_machine

OWED_MC = 1500


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiHub, str]]:
    with api_hub(tmp_path) as hub:
        with serving(hub.app) as url:
            yield hub, url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chrome_session(tmp_path) as driver:
        yield driver


def _row_state(driver: WebDriver, peer: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, f'tr[data-peer="{peer}"] .peer-state')
    return str(found[0].get_attribute("data-state")) if found else ""


def _click(driver: WebDriver, css: str) -> None:
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, css), 10, css)
    driver.find_element(By.CSS_SELECTOR, css).click()


def _fill_peer_form(driver: WebDriver, name: str, url: str, key: str) -> None:
    for element_id, value in (("peer-name", name), ("peer-url", url), ("peer-key", key),
                              ("peer-materials", "PLA, PETG")):  # fmt: skip
        box = driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(value)
    cnc = driver.find_element(By.CSS_SELECTOR, '#peer-form input[name="kinds"][value="cnc"]')
    if cnc.is_selected():
        cnc.click()
    limit = driver.find_element(By.ID, "peer-max")
    limit.clear()
    limit.send_keys("3")
    driver.find_element(By.ID, "peer-add").click()


def test_operator_manages_peers_and_sees_work_made_at_and_for_peers(
    served: tuple[ApiHub, str], browser: WebDriver, tmp_path: Path
) -> None:
    hub, base = served
    store = hub.store
    key = HubKey.generate().public.text
    log_in(browser, base, "olga")
    _click(browser, "#nav-peers")
    wait(lambda: browser.find_elements(By.ID, "peer-form"), 10, "the peers page")

    # a bad URL is refused, naming the field; nothing is added
    _fill_peer_form(browser, "beta", "ftp://nowhere", key)
    error = wait(lambda: browser.find_elements(By.ID, "peer-error"), 10, "the form's error")
    assert "url must look like" in error[0].text
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-peer="beta"]')

    _fill_peer_form(browser, "beta", "http://127.0.0.1:9", key)
    wait(lambda: _row_state(browser, "beta") == "active", 10, "beta to be listed as active")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-peer="beta"]')
    assert "fdm" in row.text and "cnc" not in row.text and "PLA, PETG" in row.text
    assert "at most 3 in flight" in row.text
    assert row.find_element(By.CSS_SELECTOR, ".peer-confirmed").get_attribute(
        "data-confirmed") == "no"  # fmt: skip
    assert peer_balances(store) == {}  # nothing owed either way yet

    _click(browser, 'tr[data-peer="beta"] button.peer-pause')
    wait(lambda: _row_state(browser, "beta") == "paused", 10, "beta to be paused")
    _click(browser, 'tr[data-peer="beta"] button.peer-resume')
    wait(lambda: _row_state(browser, "beta") == "active", 10, "beta to be resumed")
    # this test hub has no [federation] identity: a hello is refused with the reason
    _click(browser, 'tr[data-peer="beta"] button.peer-hello')
    error = wait(lambda: browser.find_elements(By.ID, "peer-error"), 10, "the hello's error")
    assert "federation is not configured" in error[0].text
    screenshot(browser, screenshots_folder(tmp_path, os.environ), "peers")

    # a part of rita's job made at hub beta, which charged for it
    job_id = hub.job("rita", quantity=2)
    sent = store.tasks.find(job_id=job_id)[0].task_id
    ensure_peer_machine(hub.store.db, "beta", datetime.now(UTC))
    complete_on(hub, sent, "peer:beta", 4.0, 0.1)
    assert settle_peer_work(store, "beta", sent, OWED_MC, datetime.now(UTC)) is True
    assert peer_balances(store) == {"beta": OWED_MC}
    # a job hub gamma asked for, made here on ada's printer
    foreign_job = hub.job(wire.peer_requester("gamma"))
    foreign = store.tasks.find(job_id=foreign_job)[0].task_id
    complete_on(hub, foreign, "ada/mk3s-1", 4.0, 0.1)

    browser.get(f"{base}/jobs/{job_id}")
    made_at = wait(lambda: browser.find_elements(By.CSS_SELECTOR, f'tr[data-task="{sent}"] '
                                                 ".made-at"), 10, "made at hub beta")  # fmt: skip
    assert made_at[0].text == "made at hub beta"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".made-at")) == 1  # the other part is not
    browser.get(f"{base}/tasks/{sent}")
    assert wait(lambda: browser.find_elements(By.ID, "made-at"), 10, "the task page")[0].text == (
        "made at hub beta")  # fmt: skip
    assert "hub beta" in browser.find_element(By.ID, "attempts").text

    browser.get(f"{base}/jobs")
    origin = wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".peer-origin"), 10, "for hub")
    assert [o.text for o in origin] == ["for hub gamma"]
    browser.get(f"{base}/jobs/{foreign_job}")
    assert browser.find_element(By.ID, "job-origin").text == "for hub gamma"

    browser.get(f"{base}/peers")
    row = wait(lambda: browser.find_elements(By.CSS_SELECTOR, 'tr[data-peer="beta"]'), 10, "beta")
    assert row[0].find_element(By.CSS_SELECTOR, ".peer-balance").text == "1.500"
    assert sent in {e.get_attribute("data-task") for e in browser.find_elements(
        By.CSS_SELECTOR, "#sent-tasks tr[data-task]")}  # fmt: skip
    assert "hub gamma" in browser.find_element(By.ID, "foreign-tasks").text
    assert "hub beta" in browser.find_element(By.ID, "made-at-peers").text
    assert "hub gamma" in browser.find_element(By.ID, "made-for-peers").text
    screenshot(browser, screenshots_folder(tmp_path, os.environ), "peers-work")

    # the overview's production counts both parts (made at beta, made here for gamma)
    browser.get(f"{base}/")
    parts = wait(lambda: browser.find_elements(By.ID, "parts-today"), 10, "the overview")
    wait(lambda: parts[0].text == "2" or browser.find_element(By.ID, "parts-today").text == "2",
         10, "two parts counted today")  # fmt: skip

    # a requester sees no Peers link, and the page is refused
    log_in(browser, base, "rita")
    assert not browser.find_elements(By.ID, "nav-peers")
    browser.get(f"{base}/peers")
    assert "403" in browser.title or "needs role operator" in browser.page_source
