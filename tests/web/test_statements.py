"""Statements (issue 11): a prosumer's two sides per month from the ledger's legs, on SQLite
and PostgreSQL; every line reconciles with the balance; the network's months and fee income."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fabnet.core import credits as cr
from fabnet.errors import InvalidInput
from fabnet.hub.economy.statements import (
    LINE_COLUMNS,
    line_json,
    network_months,
    network_totals,
    read_statement,
    statement,
    to_csv,
)
from fabnet.store import Store
from fabnet.store.statement_reads import StatementReads
from fabnet.web.charts import month_columns
from fabnet.web.dashboard.library import budget_mc

MAY = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
MAY_END = datetime(2026, 5, 31, 23, 59, tzinfo=UTC)
JUNE = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)  # postings apart in time: a statement is ordered by time
ADA, BRUNO, FEES = cr.user_account("ada"), cr.user_account("bruno"), cr.FEE_ACCOUNT
ESCROW = cr.escrow_account("job1")
SVG = "{http://www.w3.org/2000/svg}"


def _pay(task: str, job: str, payer: str, maker: str, share: int, fee: int, at: datetime
         ) -> cr.Posting:  # fmt: skip
    legs = [cr.Leg(payer, -(share + fee)), cr.Leg(FEES, fee)]
    if maker != payer:
        legs.append(cr.Leg(maker, share))
    else:
        legs[0] = cr.Leg(payer, -fee)
    return cr.Posting(cr.pay_key(task), cr.PostingKind.PAYMENT, tuple(legs), at, job, task)


def prosumer_book() -> list[cr.Posting]:
    """Ada (maker and requester) is granted 100 credits, holds 50 for job1, whose parts are
    paid to bruno (20 + 2 fee) and to ada's own machine (10 + 1 fee), 17 refunded; in June
    bruno's job2 without escrow pays ada 30 + 3 fee, and bruno pays the fee on his own part."""
    k = cr.PostingKind
    return [
        cr.transfer("grant:ada", k.GRANT, cr.ISSUE_ACCOUNT, ADA, 100_000, MAY),
        cr.transfer(cr.hold_key("job1"), k.HOLD, ADA, ESCROW, 50_000, MAY + S, job_id="job1"),
        _pay("t1", "job1", ESCROW, BRUNO, 20_000, 2_000, MAY + 2 * S),
        _pay("t2", "job1", ESCROW, ADA, 10_000, 1_000, MAY + 3 * S),
        cr.transfer(cr.refund_key("job1"), k.REFUND, ESCROW, ADA, 17_000, MAY_END, job_id="job1"),
        _pay("t3", "job2", BRUNO, ADA, 30_000, 3_000, JUNE),
        _pay("t4", "job2", BRUNO, BRUNO, 5_000, 500, JUNE + S),
    ]


def _balances(postings: list[cr.Posting]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in postings:
        for leg in p.legs:
            out[leg.account] = out.get(leg.account, 0) + leg.amount_mc
    return out


def test_a_prosumer_sees_both_sides_per_month() -> None:
    book = prosumer_book()
    ada = statement(ADA, book, frozenset({ESCROW}))
    may, june = ada.months
    assert (may.month, may.granted_mc, may.earned_mc, may.spent_mc, may.fees_mc) == (
        "2026-05", 100_000, 10_000, 33_000, 3_000)  # fmt: skip
    assert may.held_mc == 0 and may.balance_mc == 100_000 - 50_000 + 10_000 + 17_000
    assert (june.earned_mc, june.spent_mc, june.balance_mc) == (30_000, 0, 107_000)
    assert ada.closing_mc == _balances(book)[ADA]
    for line in ada.lines:  # every line reconciles: own change = granted + earned - spent - held
        assert line.amount_mc == line.granted_mc + line.earned_mc - line.spent_mc - line.held_mc
    bruno = statement(BRUNO, book, frozenset())
    assert [(m.earned_mc, m.spent_mc, m.fees_mc) for m in bruno.months] == [
        (20_000, 0, 0), (0, 33_500, 3_500)]  # fmt: skip
    assert bruno.closing_mc == _balances(book)[BRUNO] == 20_000 - 33_500
    fees = statement(FEES, book, frozenset())
    assert fees.total("earned_mc") == _balances(book)[FEES] == 6_500
    rows = to_csv([line_json(x) for x in ada.lines], LINE_COLUMNS).splitlines()
    assert rows[0].startswith("at,key,kind") and rows[-1].endswith(",107.000,")
    assert rows[3].split(",")[LINE_COLUMNS.index("spent")] == "22.000"


def test_network_totals_from_balances() -> None:
    totals = network_totals(_balances(prosumer_book()))
    assert totals.issued_mc == 100_000 and totals.fees_mc == 6_500 and totals.escrow_mc == 0
    assert totals.circulating_mc + totals.escrow_mc + totals.fees_mc == totals.issued_mc
    assert totals.accounts == 2


def test_network_totals_keep_peer_hubs_apart_from_people() -> None:
    """A hub owing peer beta 3 credits for a part its requester paid 3.3 for: beta's account
    and the federation clearing account are "with peer hubs", not with people."""
    balances = {"hub:issued": -10_000, "user:rita": 6_700, "hub:fees": 300,
                cr.peer_account("beta"): 3_000, cr.FEDERATION_ACCOUNT: 0}  # fmt: skip
    totals = network_totals(balances)
    assert (totals.circulating_mc, totals.accounts, totals.between_hubs_mc) == (6_700, 1, 3_000)
    assert totals.circulating_mc + totals.fees_mc + totals.between_hubs_mc == totals.issued_mc


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fabnet.db'}"
        found = Store(url)
        yield found
        found.close()
        return
    found = Store(str(request.getfixturevalue("pg_url")))
    try:
        yield found
    finally:
        found.close()


def test_statements_read_from_the_database(store: Store) -> None:
    book = prosumer_book()
    for posting in book:
        assert store.credits.post(posting)
    reads = StatementReads(store.db)
    ada = read_statement(reads, ADA, None, None)
    assert ada == statement(ADA, book, frozenset({ESCROW}))
    assert ada.closing_mc == store.credits.balance(ADA)
    june = read_statement(reads, ADA, JUNE.replace(day=1), None)
    assert june.opening_mc == 77_000 and [m.month for m in june.months] == ["2026-06"]
    assert june.closing_mc == store.credits.balance(ADA)
    bruno = read_statement(reads, BRUNO, None, JUNE.replace(day=1))
    assert bruno.closing_mc == 20_000 and len(bruno.lines) == 1

    may, june_net = network_months(reads.network_sums())
    assert (may.month, may.issued_mc, may.paid_mc, may.makers_mc, may.fees_mc) == (
        "2026-05", 100_000, 33_000, 30_000, 3_000)  # fmt: skip
    assert may.refunded_mc == 17_000
    assert (june_net.paid_mc, june_net.makers_mc, june_net.fees_mc) == (33_500, 30_000, 3_500)
    assert network_totals(store.credits.balances()).fees_mc == may.fees_mc + june_net.fees_mc


def test_month_columns_chart() -> None:
    svg = month_columns(
        [("2026-05", {"earned": 0.013, "spent": 2.5}), ("2026-06", {"earned": 30.0})],
        keys=("earned", "spent"), unit="credits", title="Earnings by month",
    )  # fmt: skip
    root = ET.fromstring(str(svg))
    columns = [(c.get("data-month"), c.get("data-key"), c.get("data-value"))
               for c in root.iter(f"{SVG}rect") if c.get("class") == "column"]  # fmt: skip
    assert columns == [("2026-05", "earned", "0.013"), ("2026-05", "spent", "2.5"),
                       ("2026-06", "earned", "30"), ("2026-06", "spent", "0")]  # fmt: skip
    total = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-total"]
    assert total == ["30.013 credits"]
    empty = ET.fromstring(str(month_columns([], keys=("earned",), title="x")))
    assert any(t.get("class") == "empty" for t in empty.iter(f"{SVG}text"))


def test_budget_field_in_credits() -> None:
    assert budget_mc("") is None and budget_mc("  ") is None
    assert budget_mc("12.5") == 12_500 and budget_mc("0.001") == 1
    for bad in ("0.0005", "abc", "-1", "0", "nan", "inf"):
        with pytest.raises(InvalidInput, match="budget must be a number of credits"):
            budget_mc(bad)
