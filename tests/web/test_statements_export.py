"""``fabnet ledger export`` and the statement routes against a hub served over real HTTP: a
prosumer exports their own statement (both sides), not another's; an operator exports anyone's
and the fee account, per month, and reads the network's totals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from api_support import CUBE, ApiHub, api_hub, json_of, serving
from click.testing import CliRunner

from fabnet.core import events as ev
from fabnet.core.tasks import Transition
from fabnet.hub.economy.export_cli import ledger, statement_query
from fabnet.hub.economy.statements import credits_text


def finish(hub: ApiHub, task_id: str, machine: str) -> None:
    """Make a task on ``machine`` as its agent's events would."""
    now = datetime.now(UTC)
    offer = hub.store.apply_event(task_id, ev.TaskOffered(machine_id=machine), now)
    assert isinstance(offer, Transition)
    n = offer.task.offer_no
    for event in (
        ev.TaskAccepted(machine_id=machine, offer_no=n),
        ev.TaskStarted(machine_id=machine, offer_no=n),
        ev.TaskCompleted(machine_id=machine, offer_no=n, grams=10.0, machine_hours=1.0),
    ):
        assert isinstance(hub.store.apply_event(task_id, event, now), Transition)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiHub, str]]:
    """The API hub with a settled job: ada (maker and requester) paid bruno for one part
    and her own machine for the other; the rest of her cap refunded."""
    with api_hub(tmp_path) as hub:
        olga, ada = hub.client("olga"), hub.client("ada")
        grant = {"user": "ada", "amount_mc": 100_000, "ref": "welcome-ada"}
        assert olga.post("/api/v1/credits/grants", json=grant).status_code == 201
        ask = {"design": CUBE, "quantity": 2, "material": "PLA", "budget_cap_mc": 60_000}
        job = json_of(ada.post("/api/v1/jobs/budgeted", json=ask))
        first, second = (t.task_id for t in hub.store.tasks.find(job_id=job["id"]))
        finish(hub, first, "bruno/ender3-1")
        finish(hub, second, "ada/mk3s-1")
        for task in (first, second):
            assert ada.post(f"/api/v1/tasks/{task}/accept").status_code == 200
        with serving(hub.app) as url:
            yield hub, url


def _export(hub: ApiHub, url: str, user: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        ledger, ["export", *args, "--hub", url, "--token", hub.tokens[user]]
    )
    return result.exit_code, result.output if result.exit_code == 0 else str(result.exception)


def test_export_own_statement_both_sides(served: tuple[ApiHub, str]) -> None:
    hub, url = served
    code, text = _export(hub, url, "ada")
    assert code == 0, text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["kind"] for r in rows][:2] == ["grant", "hold"] and rows[-1]["kind"] == "refund"
    payments = [r for r in rows if r["kind"] == "payment"]
    assert len(payments) == 2 and all(float(r["spent"]) > 0 for r in payments)
    assert sum(float(r["earned"]) > 0 for r in payments) == 1  # her own machine's part
    balance = hub.store.credits.balance("user:ada")
    assert rows[-1]["balance"] == credits_text(balance)

    code, refused = _export(hub, url, "ada", "--account", "bruno")
    assert code != 0 and "403" in refused
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    code, empty = _export(hub, url, "ada", "--from", tomorrow)
    assert code == 0 and empty.splitlines() == [empty.splitlines()[0]]
    code, bad = _export(hub, url, "ada", "--from", "2026-13-01")
    assert code != 0 and "--from must be a date YYYY-MM-DD" in bad


def test_operator_exports_anyone_monthly_and_sees_the_network(
    served: tuple[ApiHub, str], tmp_path: Path
) -> None:
    hub, url = served
    out = tmp_path / "bruno.csv"
    today = date.today().isoformat()
    code, text = _export(hub, url, "olga", "--account", "bruno", "--monthly", "--from", today,
                         "--to", today, "--out", str(out))  # fmt: skip
    assert code == 0, text
    (month,) = list(csv.DictReader(io.StringIO(out.read_text())))
    assert month["month"] == today[:7] and float(month["earned"]) > 0
    assert float(month["spent"]) == 0
    code, fees = _export(hub, url, "olga", "--account", "hub:fees", "--monthly")
    assert code == 0, fees
    fee_income = hub.store.credits.balance("hub:fees")
    assert fee_income > 0
    assert list(csv.DictReader(io.StringIO(fees)))[0]["earned"] == credits_text(fee_income)

    network = json_of(hub.client("olga").get("/api/v1/credits/network"))
    assert network["totals"]["fees_mc"] == fee_income
    assert network["totals"]["issued_mc"] == 100_000
    (now,) = network["months"]
    assert now["fees_mc"] == fee_income and now["makers_mc"] + now["fees_mc"] == now["paid_mc"]
    assert hub.client("ada").get("/api/v1/credits/network").status_code == 403


def test_statement_query() -> None:
    assert statement_query(None, None, None) == ""
    assert statement_query("hub:fees", None, None) == "?account=hub%3Afees"
    query = statement_query("rita", date(2026, 1, 1), date(2026, 1, 31))
    assert "user=rita" in query and "until=2026-02-01T00%3A00%3A00%2B00%3A00" in query
