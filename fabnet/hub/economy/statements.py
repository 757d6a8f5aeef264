"""Statements (issue 11): what an account earned, spent, paid in fees and holds, per posting
and per month, computed from the ledger's legs alone (no float, no stored totals).

An account sees two sides. As a maker it *earns*: payment legs into it. As a requester it
*spends*: what its jobs paid (from the job's escrow, or from the account itself for a job
without a budget), fee included; ``fees`` is the fee part of that. Money moved into a job's
escrow and not yet paid or refunded is *held*. For every line and month:

    balance change = granted + earned - spent - held_change

so a statement always reconciles with the balance (``tests/web/test_statements.py``). The
same computation over ``hub:fees`` gives the operator's fee income as ``earned``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from fabnet.core import credits as cr
from fabnet.store.statement_reads import NetworkSum, StatementReads


@dataclass(frozen=True)
class Line:
    """One posting as ``account`` sees it; ``balance_mc`` is the account's balance after it."""

    at: datetime
    key: str
    kind: str
    job_id: str | None
    task_id: str | None
    amount_mc: int  # into the account itself (negative: out)
    granted_mc: int
    earned_mc: int
    spent_mc: int
    fees_mc: int
    held_mc: int  # change of what the account's jobs hold in escrow
    balance_mc: int
    memo: str


@dataclass(frozen=True)
class Month:
    """A month's sums (``YYYY-MM``, UTC); ``balance_mc`` at its end."""

    month: str
    granted_mc: int
    earned_mc: int
    spent_mc: int
    fees_mc: int
    held_mc: int
    balance_mc: int


@dataclass(frozen=True)
class Statement:
    account: str
    opening_mc: int  # balance before the first line
    lines: tuple[Line, ...]
    months: tuple[Month, ...]

    @property
    def closing_mc(self) -> int:
        return self.lines[-1].balance_mc if self.lines else self.opening_mc

    def total(self, name: str) -> int:
        """The sum of one column (``earned_mc``, ``spent_mc``, ...) over the statement."""
        return sum(int(getattr(m, name)) for m in self.months)


def line_for(posting: cr.Posting, account: str, escrows: frozenset[str], before_mc: int) -> Line:
    """``posting`` seen by ``account`` (whose jobs' escrow accounts are ``escrows``), after a
    balance of ``before_mc``."""
    own = posting.amount_for(account)
    kind = posting.kind
    granted = earned = spent = fees = held = 0
    if kind is cr.PostingKind.GRANT:
        granted = own
    elif kind is cr.PostingKind.HOLD:
        held = -own
    elif kind is cr.PostingKind.REFUND:
        held = -own
    elif kind is cr.PostingKind.PAYMENT:
        payers = {account} | escrows
        spent = -sum(leg.amount_mc for leg in posting.legs
                     if leg.account in payers and leg.amount_mc < 0)  # fmt: skip
        earned = sum(leg.amount_mc for leg in posting.legs
                     if leg.account == account and leg.amount_mc > 0)  # fmt: skip
        if spent:
            fees = posting.amount_for(cr.FEE_ACCOUNT)
            from_escrow = -sum(leg.amount_mc for leg in posting.legs
                               if leg.account in escrows and leg.amount_mc < 0)  # fmt: skip
            held = -from_escrow
    return Line(posting.at, posting.key, kind.value, posting.job_id, posting.task_id, own,
                granted, earned, spent, fees, held, before_mc + own, posting.memo)  # fmt: skip


def month_of(when: datetime) -> str:
    return f"{when.year:04d}-{when.month:02d}"


def statement(
    account: str, postings: Iterable[cr.Posting], escrows: frozenset[str], opening_mc: int = 0
) -> Statement:
    """The statement of ``account`` over ``postings`` (oldest first); postings with no leg on
    the account or its escrows are skipped."""
    lines: list[Line] = []
    balance = opening_mc
    mine = {account} | escrows
    for posting in postings:
        if not any(leg.account in mine for leg in posting.legs):
            continue
        line = line_for(posting, account, escrows, balance)
        balance = line.balance_mc
        lines.append(line)
    return Statement(account, opening_mc, tuple(lines), months(lines))


def months(lines: Sequence[Line]) -> tuple[Month, ...]:
    """Per-month sums of ``lines`` (oldest first); months without a line are left out."""
    out: list[Month] = []
    for line in lines:
        key = month_of(line.at)
        prev = out[-1] if out and out[-1].month == key else Month(key, 0, 0, 0, 0, 0, 0)
        month = Month(
            key,
            prev.granted_mc + line.granted_mc,
            prev.earned_mc + line.earned_mc,
            prev.spent_mc + line.spent_mc,
            prev.fees_mc + line.fees_mc,
            prev.held_mc + line.held_mc,
            line.balance_mc,
        )
        if out and out[-1].month == key:
            out[-1] = month
        else:
            out.append(month)
    return tuple(out)


@dataclass(frozen=True)
class NetworkMonth:
    """The network in one month: credits issued (granted), paid for parts (fee included), of
    which makers earned and the hub kept as fees, and refunded from escrows."""

    month: str
    issued_mc: int
    paid_mc: int
    makers_mc: int
    fees_mc: int
    refunded_mc: int


def network_months(sums: Iterable[NetworkSum]) -> tuple[NetworkMonth, ...]:
    """Per-month network figures from the database's grouped sums."""
    table: dict[str, dict[str, int]] = {}
    for s in sums:
        row = table.setdefault(s.month, {f.name: 0 for f in fields(NetworkMonth)[1:]})
        if s.kind is cr.PostingKind.GRANT and s.inflow:
            row["issued_mc"] += s.amount_mc
        elif s.kind is cr.PostingKind.PAYMENT and not s.inflow:
            row["paid_mc"] -= s.amount_mc
        elif s.kind is cr.PostingKind.PAYMENT and s.account_class == "user":
            row["makers_mc"] += s.amount_mc
        elif s.kind is cr.PostingKind.PAYMENT and s.account_class == "fees":
            row["fees_mc"] += s.amount_mc
        elif s.kind is cr.PostingKind.REFUND and s.inflow:
            row["refunded_mc"] += s.amount_mc
    return tuple(NetworkMonth(m, **table[m]) for m in sorted(table))


@dataclass(frozen=True)
class NetworkTotals:
    """Now: credits in people's and makers' hands, held in escrows, the fee income, and the
    balance with peer hubs (their ``peer:`` accounts and the federation clearing account: what
    peers are owed, less what this hub's requesters have not yet paid for their work)."""

    issued_mc: int
    circulating_mc: int
    escrow_mc: int
    fees_mc: int
    accounts: int
    between_hubs_mc: int = 0


def network_totals(balances: dict[str, int]) -> NetworkTotals:
    """From every account's balance (``Credits.balances``)."""
    escrow = sum(v for a, v in balances.items() if a.startswith(cr.escrow_account("")))
    hubs = [a for a in balances if cr.peer_of_account(a) or a == cr.FEDERATION_ACCOUNT]
    special = (cr.FEE_ACCOUNT, cr.ISSUE_ACCOUNT, *hubs)
    people = [a for a in balances if a not in special and not a.startswith(cr.escrow_account(""))]
    return NetworkTotals(
        issued_mc=-balances.get(cr.ISSUE_ACCOUNT, 0),
        circulating_mc=sum(balances[a] for a in people),
        escrow_mc=escrow,
        fees_mc=balances.get(cr.FEE_ACCOUNT, 0),
        accounts=len(people),
        between_hubs_mc=sum(balances[a] for a in hubs),
    )


def credits_text(mc: int | None) -> str:
    """Milli-credits as credits with three decimals (exact: integer arithmetic)."""
    if mc is None:
        return "-"
    sign = "-" if mc < 0 else ""
    whole, milli = divmod(abs(mc), cr.MILLI)
    return f"{sign}{whole}.{milli:03d}"


LINE_COLUMNS = ("at", "key", "kind", "job_id", "task_id", "amount", "granted", "earned",
                "spent", "fees", "held", "balance", "memo")  # fmt: skip
MONTH_COLUMNS = ("month", "granted", "earned", "spent", "fees", "held", "balance")
MONEY = frozenset({"amount", "granted", "earned", "spent", "fees", "held", "balance"})


def to_csv(rows: Iterable[dict[str, object]], columns: Sequence[str]) -> str:
    """Rows (the API's JSON: money as ``<name>_mc``) as CSV with credits to three decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for name in columns:
            if name in MONEY:
                value = row[f"{name}_mc"]
                assert isinstance(value, int)
                cells.append(credits_text(value))
            else:
                value = row.get(name)
                cells.append("" if value is None else str(value))
        writer.writerow(cells)
    return out.getvalue()


def read_statement(
    reads: StatementReads, account: str, since: datetime | None, until: datetime | None
) -> Statement:
    """``account``'s statement over ``[since, until)`` (None: open), read in two reads."""
    postings, escrows = reads.postings_for(account, since, until)
    return statement(account, postings, escrows, reads.balance_before(account, since))


def line_json(line: Line) -> dict[str, object]:
    return {
        "key": line.key, "kind": line.kind, "at": line.at.isoformat(),
        "amount_mc": line.amount_mc, "job_id": line.job_id, "task_id": line.task_id,
        "memo": line.memo, "granted_mc": line.granted_mc, "earned_mc": line.earned_mc,
        "spent_mc": line.spent_mc, "fees_mc": line.fees_mc, "held_mc": line.held_mc,
        "balance_mc": line.balance_mc,
    }  # fmt: skip


def month_json(month: Month) -> dict[str, object]:
    return {
        "month": month.month, "granted_mc": month.granted_mc, "earned_mc": month.earned_mc,
        "spent_mc": month.spent_mc, "fees_mc": month.fees_mc, "held_mc": month.held_mc,
        "balance_mc": month.balance_mc,
    }  # fmt: skip


def network_json(months_: Sequence[NetworkMonth], totals: NetworkTotals) -> dict[str, object]:
    return {
        "totals": {f.name: getattr(totals, f.name) for f in fields(NetworkTotals)},
        "months": [{f.name: getattr(m, f.name) for f in fields(NetworkMonth)} for m in months_],
    }
