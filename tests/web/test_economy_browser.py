"""The economy in real headless Chromium (issue 11): a prosumer (maker and requester in one
account) asks the design page for a price, submits within a budget, accepts one part and
rejects another on their pages, and sees both sides of their statement; the operator sees
the network's fee income. Parts are finished by applying the agents' events through the
store (no machines); every action in the browser is a click."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_support import CUBE, ApiHub, api_hub, complete_on, serving
from browser_support import chrome_session, job_id_in, log_in, screenshot, screenshots_folder, wait
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from fabnet.core.credits import FEE_ACCOUNT, Review
from fabnet.core.states import TaskState
from fabnet.hub.economy.statements import credits_text

GRANT_MC = 100_000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiHub, str]]:
    with api_hub(tmp_path) as hub:
        hub.store.credits.grant("welcome-ada", "ada", GRANT_MC, datetime.now(UTC))
        with serving(hub.app) as url:
            yield hub, url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chrome_session(tmp_path) as driver:
        yield driver


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _click(driver: WebDriver, css: str) -> None:
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, css), 10, css)
    driver.find_element(By.CSS_SELECTOR, css).click()


def _mc(text: str) -> int:
    whole, _, milli = text.strip().partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 1000 + int(milli or 0))


def test_prosumer_quotes_budgets_reviews_and_reads_both_sides(
    served: tuple[ApiHub, str], browser: WebDriver, tmp_path: Path
) -> None:
    hub, base = served
    store = hub.store
    log_in(browser, base, "ada")
    nav = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")}
    assert {"My jobs", "Maker", "Credits"} <= nav, f"a prosumer's nav lacks a side: {nav}"

    # the price box on the design page, before requesting copies
    _click(browser, 'header nav a[href="/designs"]')
    _click(browser, f'a[data-slug="{CUBE}"]')
    wait(lambda: browser.find_elements(By.ID, "price-box"), 10, "the price box")
    quantity = browser.find_element(By.ID, "quantity")
    quantity.clear()
    quantity.send_keys("2")
    Select(browser.find_element(By.ID, "material")).select_by_visible_text("PLA")
    browser.find_element(By.ID, "quote-button").click()
    wait(lambda: browser.find_element(By.ID, "quote-result").is_displayed(), 10, "the quote")
    lowest, typical = _mc(_text(browser, "quote-lowest")), _mc(_text(browser, "quote-typical"))
    assert 0 < lowest <= typical
    assert _text(browser, "quote-count") == "2"
    assert "ada/mk3s-1" in _text(browser, "quote-machines")
    assert float(_text(browser, "quote-eta")) > 0
    placeholder = browser.find_element(By.ID, "budget").get_attribute("placeholder") or ""
    cap = _mc(placeholder.removeprefix("e.g. "))  # the highest price: within it, whatever made
    assert typical <= cap < GRANT_MC
    screenshot(browser, screenshots_folder(tmp_path, os.environ), "price")

    browser.find_element(By.ID, "budget").send_keys(credits_text(cap))
    browser.find_element(By.ID, "request-submit").click()
    wait(lambda: "/jobs/" in browser.current_url, 10, "the job page")
    job_id = job_id_in(browser.current_url)
    assert store.credits.balance("user:ada") == GRANT_MC - cap  # the cap is held

    # one part made on her own machine, one on bruno's
    own, other = (t.task_id for t in store.tasks.find(job_id=job_id))
    complete_on(hub, own, "ada/mk3s-1", 3.0, 0.05)
    complete_on(hub, other, "bruno/ender3-1", 3.0, 0.05)

    # accept the first on its page
    browser.refresh()
    _click(browser, f'#task-list a[href="/tasks/{own}"]')
    wait(lambda: browser.find_elements(By.ID, "accept-task"), 10, "the accept button")
    screenshot(browser, screenshots_folder(tmp_path, os.environ), "task-review")
    _click(browser, "#accept-task")
    wait(lambda: browser.find_elements(By.ID, "task-review"), 10, "the part to show accepted")
    assert browser.find_element(By.ID, "task-review").get_attribute("data-review") == "accepted"
    assert store.reviews.review_of(own) is Review.ACCEPTED

    # reject the second, as damaged, from the job page
    _click(browser, f'a[href="/jobs/{job_id}"]')
    _click(browser, f'#task-list a[href="/tasks/{other}"]')
    wait(lambda: browser.find_elements(By.ID, "reject-task"), 10, "the reject button")
    Select(browser.find_element(By.ID, "reject-reason")).select_by_value("damaged")
    browser.find_element(By.ID, "reject-detail").send_keys("a corner snapped off")
    browser.find_element(By.ID, "reject-task").click()
    wait(lambda: store.tasks.get(other).state is TaskState.QUEUED, 10, "the part to be queued")
    (rejection,) = [r for r in store.reviews.rejections("bruno/ender3-1") if r.task_id == other]
    assert rejection.reason == "damaged"
    wait(lambda: not browser.find_elements(By.ID, "reject-task"), 10, "the page to reload")

    # both sides of her statement
    _click(browser, "#nav-credits")
    wait(lambda: browser.find_elements(By.ID, "credits-balance"), 10, "the credits page")
    earned, spent = _mc(_text(browser, "earned-total")), _mc(_text(browser, "spent-total"))
    assert earned > 0 and spent > earned  # her own part, fee on top; and it was paid for
    assert _mc(_text(browser, "credits-balance")) == store.credits.balance("user:ada")
    held = _mc(_text(browser, "held-total"))
    assert held == cap - spent > 0  # the rejected part's share is still held
    columns = browser.find_elements(
        By.CSS_SELECTOR, '#earnings-chart rect.column[data-key="earned"]'
    )
    assert [float(c.get_attribute("data-value") or 0) for c in columns] == [earned / 1000]
    kinds = [
        r.get_attribute("data-kind")
        for r in browser.find_elements(By.CSS_SELECTOR, "#credit-lines tr[data-kind]")
    ]
    assert sorted(kinds) == ["grant", "hold", "payment"]
    screenshot(browser, screenshots_folder(tmp_path, os.environ), "credits")

    # the operator: the network's fee income
    log_in(browser, base, "olga")
    _click(browser, "#nav-credits")
    wait(lambda: browser.find_elements(By.ID, "fee-income"), 10, "the network totals")
    assert _mc(_text(browser, "fee-income")) == store.credits.balance(FEE_ACCOUNT) > 0
    assert _mc(_text(browser, "network-issued")) == GRANT_MC
    screenshot(browser, screenshots_folder(tmp_path, os.environ), "network")
    # a requester-only account is unchanged: no maker side on their page
    log_in(browser, base, "rita")
    _click(browser, "#nav-credits")
    wait(lambda: browser.find_elements(By.ID, "credits-balance"), 10, "rita's credits")
    assert not browser.find_elements(By.ID, "earned-total")
    assert browser.find_elements(By.ID, "spent-total")
