"""Reads for credit statements (issue 11): the postings that concern one account — its own
legs and its jobs' escrows, so a requester sees what their escrow paid makers — the balance
before a date, and the network's movements per month summed in the database.

The arithmetic on what is read lives in ``fabnet.hub.economy.statements``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, String, case, func, or_, select
from sqlalchemy.orm import Session

from fabnet.core import credits as cr
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput
from fabnet.store.credit_models import LegRow, PostingRow
from fabnet.store.database import Database

MAX_POSTINGS = 10_000
ESCROW_PREFIX = cr.escrow_account("")


@dataclass(frozen=True)
class NetworkSum:
    """The sum of the legs of one kind of posting in one month, for one class of account
    (``user``: people and makers, ``escrow``, ``fees``, ``issued``), into (``inflow``) or out of
    the accounts."""

    month: str  # YYYY-MM, UTC
    kind: cr.PostingKind
    account_class: str
    inflow: bool
    amount_mc: int


def _window(query: Select[PostingRow], since: datetime | None, until: datetime | None
            ) -> Select[PostingRow]:  # fmt: skip
    if since is not None:
        query = query.where(PostingRow.at >= require_utc("since", since))
    if until is not None:
        query = query.where(PostingRow.at < require_utc("until", until))
    return query


def escrows_of(account: str) -> Select[str]:
    """The escrow accounts of the jobs whose budget ``account`` held (a subquery)."""
    held = select(LegRow.posting_id).join(PostingRow, PostingRow.id == LegRow.posting_id)
    held = held.where(LegRow.account == account, PostingRow.kind == cr.PostingKind.HOLD.value)
    return select(LegRow.account).where(
        LegRow.posting_id.in_(held), LegRow.account.startswith(ESCROW_PREFIX)
    )


class StatementReads:
    """One transaction per call."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def postings_for(
        self,
        account: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_POSTINGS,
    ) -> tuple[list[cr.Posting], frozenset[str]]:
        """Postings in ``[since, until)`` with a leg on ``account`` or on the escrow of one of
        its jobs, oldest first, with all their legs; and those escrow accounts."""
        if not 1 <= limit <= MAX_POSTINGS:
            raise InvalidInput(f"limit must be 1..{MAX_POSTINGS}, got {limit}")

        def read(s: Session) -> tuple[list[cr.Posting], frozenset[str]]:
            escrows = frozenset(s.scalars(escrows_of(account)))
            touching = select(LegRow.posting_id).where(
                or_(LegRow.account == account, LegRow.account.in_(escrows))
            )
            query = _window(select(PostingRow).where(PostingRow.id.in_(touching)), since, until)
            rows = list(s.scalars(query.order_by(PostingRow.at, PostingRow.id).limit(limit)))
            legs: dict[str, list[cr.Leg]] = {}
            found = select(LegRow).where(LegRow.posting_id.in_([r.id for r in rows]))
            for leg in s.scalars(found.order_by(LegRow.id)):
                legs.setdefault(leg.posting_id, []).append(cr.Leg(leg.account, int(leg.amount_mc)))
            postings = [
                cr.Posting(r.key, cr.PostingKind(r.kind), tuple(legs.get(r.id, ())), r.at,
                           r.job_id, r.task_id, r.memo)
                for r in rows
            ]  # fmt: skip
            return postings, escrows

        return self._db.reading(read)

    def balance_before(self, account: str, when: datetime | None) -> int:
        """``account``'s balance just before ``when`` (None: 0, the account's beginning)."""
        if when is None:
            return 0
        query = (
            select(func.sum(LegRow.amount_mc))
            .join(PostingRow, PostingRow.id == LegRow.posting_id)
            .where(LegRow.account == account, PostingRow.at < require_utc("since", when))
        )
        return self._db.reading(lambda s: int(s.scalar(query) or 0))

    def network_sums(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[NetworkSum]:
        """Every month's legs summed by kind, class of account and direction (one read)."""
        if self._db.is_sqlite:
            month = func.substr(PostingRow.at, 1, 7, type_=String)
        else:
            month = func.to_char(PostingRow.at, "YYYY-MM", type_=String)
        account_class = case(
            (LegRow.account.startswith(ESCROW_PREFIX), "escrow"),
            (LegRow.account == cr.FEE_ACCOUNT, "fees"),
            (LegRow.account == cr.ISSUE_ACCOUNT, "issued"),
            else_="user",
        )
        inflow = LegRow.amount_mc > 0
        query = (
            select(month, PostingRow.kind, account_class, inflow, func.sum(LegRow.amount_mc))
            .join(PostingRow, PostingRow.id == LegRow.posting_id)
            .group_by(month, PostingRow.kind, account_class, inflow)
            .order_by(month)
        )
        if since is not None:
            query = query.where(PostingRow.at >= require_utc("since", since))
        if until is not None:
            query = query.where(PostingRow.at < require_utc("until", until))

        def read(s: Session) -> list[NetworkSum]:
            return [
                NetworkSum(str(m), cr.PostingKind(k), str(c), bool(i), int(total))
                for m, k, c, i, total in s.execute(query)
            ]

        return self._db.reading(read)
