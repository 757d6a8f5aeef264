"""The credit ledger in the database (issue 11): postings written once under their key,
balances summed from legs, holds checked against the balance under a lock on the account.

``post_in``/``balance_in`` work inside a caller's transaction (reviews pay and refund in the
same transaction that records the decision); ``Credits`` opens its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabnet.core import credits as cr
from fabnet.core.ids import new_id
from fabnet.core.timeutil import require_utc
from fabnet.errors import Conflict, InvalidInput
from fabnet.store.account_models import UserRow
from fabnet.store.credit_models import CreditAccountRow, LegRow, PostingRow
from fabnet.store.database import Database

log = logging.getLogger(__name__)

MEMO_MAX = 500
MAX_STATEMENT = 10_000


@dataclass(frozen=True)
class StatementLine:
    """One posting as one account sees it: ``amount_mc`` into the account (negative: out)."""

    key: str
    kind: cr.PostingKind
    at: datetime
    amount_mc: int
    job_id: str | None
    task_id: str | None
    memo: str


def ensure_accounts(s: Session, accounts: Iterable[str], now: datetime) -> None:
    """Insert the account rows that do not exist yet (a concurrent insert is no error)."""
    rows = [{"account": a, "created_at": now} for a in sorted(set(accounts))]
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    s.execute(insert(CreditAccountRow).values(rows).on_conflict_do_nothing())


def post_in(s: Session, posting: cr.Posting) -> bool:
    """Write ``posting`` in the caller's transaction; False (nothing written) when a posting
    with its key exists, also when another transaction wrote it a moment ago."""
    if s.scalar(select(PostingRow.id).where(PostingRow.key == posting.key)) is not None:
        return False
    ensure_accounts(s, (leg.account for leg in posting.legs), posting.at)
    posting_id = new_id()
    try:
        with s.begin_nested():
            s.add(
                PostingRow(
                    id=posting_id,
                    key=posting.key,
                    kind=posting.kind.value,
                    at=posting.at,
                    job_id=posting.job_id,
                    task_id=posting.task_id,
                    memo=posting.memo[:MEMO_MAX],
                )
            )
            s.flush()
            s.add_all(LegRow(posting_id=posting_id, account=leg.account, amount_mc=leg.amount_mc)
                      for leg in posting.legs)  # fmt: skip
            s.flush()
    except IntegrityError:
        if s.scalar(select(PostingRow.id).where(PostingRow.key == posting.key)) is None:
            raise
        log.info("posting %s raced a duplicate", posting.key)
        return False
    return True


def balance_in(s: Session, account: str) -> int:
    """The sum of ``account``'s legs."""
    total = s.scalar(select(func.sum(LegRow.amount_mc)).where(LegRow.account == account))
    return int(total or 0)


def lock_account(s: Session, account: str, now: datetime) -> None:
    """Make sure ``account`` has a row and lock it until the transaction ends (PostgreSQL; a
    SQLite write transaction holds the database's one write lock already)."""
    ensure_accounts(s, [account], now)
    s.execute(
        select(CreditAccountRow.account)
        .where(CreditAccountRow.account == account)
        .with_for_update()
    )


def posting_key_exists(s: Session, key: str) -> bool:
    return s.scalar(select(PostingRow.id).where(PostingRow.key == key)) is not None


def posted_amount_in(s: Session, key: str, account: str) -> int | None:
    """What the posting under ``key`` moved into ``account`` (negative: out of it); None when
    no posting has that key."""
    posting_id = s.scalar(select(PostingRow.id).where(PostingRow.key == key))
    return _moved_into(s, posting_id, account)


def _moved_into(s: Session, posting_id: str | None, account: str) -> int | None:
    """What posting ``posting_id`` moved into ``account``; None for no posting."""
    if posting_id is None:
        return None
    total = s.scalar(
        select(func.sum(LegRow.amount_mc)).where(
            LegRow.posting_id == posting_id, LegRow.account == account
        )
    )
    return int(total or 0)


def latest_amount_in(s: Session, kind: cr.PostingKind, task_id: str, account: str) -> int | None:
    """What the newest posting of ``kind`` for task ``task_id`` moved into ``account``; None
    when there is none (e.g. the charge for the last part a peer made for the task)."""
    posting_id = s.scalar(
        select(PostingRow.id)
        .join(LegRow, LegRow.posting_id == PostingRow.id)
        .where(
            PostingRow.kind == kind.value, PostingRow.task_id == task_id, LegRow.account == account
        )  # fmt: skip
        .order_by(PostingRow.at.desc(), PostingRow.id.desc())
        .limit(1)
    )
    return _moved_into(s, posting_id, account)


def owner_account(s: Session, maker_id: str) -> str:
    """The account that earns for maker ``maker_id``: its user's (one account per person,
    so a prosumer's earnings pay for their requests), else the maker's own."""
    for name, maker_ids in s.execute(select(UserRow.name, UserRow.maker_ids)):
        if maker_id in (maker_ids or ()):
            return cr.user_account(name)
    return cr.maker_account(maker_id)


def _posting(row: PostingRow, legs: list[LegRow]) -> cr.Posting:
    return cr.Posting(
        row.key,
        cr.PostingKind(row.kind),
        tuple(cr.Leg(leg.account, int(leg.amount_mc)) for leg in legs),
        row.at,
        row.job_id,
        row.task_id,
        row.memo,
    )


class Credits:
    """Posting, balances and statements, each call its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def post(self, posting: cr.Posting) -> bool:
        """Write ``posting`` once; False if its key was posted before."""
        with self._db.write() as s:
            return post_in(s, posting)

    def grant(self, ref: str, user: str, amount_mc: int, now: datetime, memo: str = "") -> bool:
        """Hand ``amount_mc`` new credits to ``user`` under key ``grant:<ref>`` (once)."""
        posting = cr.transfer(
            cr.grant_key(ref),
            cr.PostingKind.GRANT,
            cr.ISSUE_ACCOUNT,
            cr.user_account(user),
            amount_mc,
            require_utc("now", now),
            memo=memo,
        )
        return self.post(posting)

    def hold(
        self, job_id: str, requester: str, cap_mc: int, debt_limit_mc: int | None, now: datetime
    ) -> cr.Posting:
        """Move a job's budget cap from its requester into the job's escrow, once. Raises
        ``Conflict`` when the requester's balance cannot cover it (beyond the debt limit; a
        peer hub's account has none)."""
        account = cr.requester_account(requester)
        if cr.peer_of_account(account):
            debt_limit_mc = None
        posting = cr.transfer(
            cr.hold_key(job_id),
            cr.PostingKind.HOLD,
            account,
            cr.escrow_account(job_id),
            cap_mc,
            require_utc("now", now),
            job_id=job_id,
            memo="budget cap held for the job",
        )
        with self._db.write() as s:
            lock_account(s, account, now)
            if posting_key_exists(s, posting.key):
                return posting
            balance = balance_in(s, account)
            if not cr.can_commit(balance, cap_mc, debt_limit_mc):
                raise Conflict(
                    f"not enough credits: {requester} has {balance} mc, the job's cap is "
                    f"{cap_mc} mc (debt allowed: {debt_limit_mc} mc)"
                )
            post_in(s, posting)
        return posting

    def balance(self, account: str) -> int:
        return self._db.reading(lambda s: balance_in(s, account))

    def balances(self, prefix: str = "") -> dict[str, int]:
        """Every account's balance (of the accounts starting with ``prefix``), summed from its
        legs."""
        query = select(LegRow.account, func.sum(LegRow.amount_mc)).group_by(LegRow.account)
        if prefix:
            query = query.where(LegRow.account.startswith(prefix, autoescape=True))
        return self._db.reading(lambda s: {a: int(t) for a, t in s.execute(query)})

    def posted_amount(self, key: str, account: str) -> int | None:
        """See ``posted_amount_in``."""
        return self._db.reading(lambda s: posted_amount_in(s, key, account))

    def statement(
        self,
        account: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_STATEMENT,
    ) -> list[StatementLine]:
        """``account``'s postings in ``[since, until)``, oldest first."""
        if not 1 <= limit <= MAX_STATEMENT:
            raise InvalidInput(f"limit must be 1..{MAX_STATEMENT}, got {limit}")
        query = (
            select(PostingRow, func.sum(LegRow.amount_mc))
            .join(LegRow, LegRow.posting_id == PostingRow.id)
            .where(LegRow.account == account)
            .group_by(PostingRow.id)
            .order_by(PostingRow.at, PostingRow.id)
            .limit(limit)
        )
        if since is not None:
            query = query.where(PostingRow.at >= require_utc("since", since))
        if until is not None:
            query = query.where(PostingRow.at < require_utc("until", until))

        def read(s: Session) -> list[StatementLine]:
            return [
                StatementLine(
                    row.key,
                    cr.PostingKind(row.kind),
                    row.at,
                    int(amount),
                    row.job_id,
                    row.task_id,
                    row.memo,
                )
                for row, amount in s.execute(query)
            ]

        return self._db.reading(read)

    def postings(
        self, kind: cr.PostingKind | None = None, job_id: str | None = None
    ) -> list[cr.Posting]:
        """Postings (of a kind, of a job) with their legs, oldest first."""
        query = select(PostingRow).order_by(PostingRow.at, PostingRow.id)
        if kind is not None:
            query = query.where(PostingRow.kind == kind.value)
        if job_id is not None:
            query = query.where(PostingRow.job_id == job_id)

        def read(s: Session) -> list[cr.Posting]:
            rows = list(s.scalars(query))
            legs: dict[str, list[LegRow]] = {}
            found = select(LegRow).where(LegRow.posting_id.in_([r.id for r in rows]))
            for leg in s.scalars(found.order_by(LegRow.id)):
                legs.setdefault(leg.posting_id, []).append(leg)
            return [_posting(r, legs.get(r.id, [])) for r in rows]

        return self._db.reading(read)

    def unbalanced(self) -> list[str]:
        """Keys of postings whose legs do not sum to zero: always empty, checked by tests."""
        query = (
            select(PostingRow.key)
            .join(LegRow, LegRow.posting_id == PostingRow.id)
            .group_by(PostingRow.key)
            .having(func.sum(LegRow.amount_mc) != 0)
        )
        return self._db.reading(lambda s: list(s.scalars(query)))
