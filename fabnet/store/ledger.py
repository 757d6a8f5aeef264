"""Ledger queries: entries, sums grouped by a key (in SQL), series, the fairness tally."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, func, literal, or_, select

from fabnet.core.ledger import (
    FAIRNESS_WINDOW,
    LedgerEntry,
    LedgerKey,
    SeriesPoint,
    Totals,
    series,
)
from fabnet.core.timeutil import require_utc
from fabnet.store.convert import ledger_from_row
from fabnet.store.database import Database
from fabnet.store.models import JobRow, LedgerRow


@dataclass(frozen=True)
class LedgerScope:
    """The ledger rows a non-operator may see grouped by job, machine or maker (issue 13):
    those made on ``maker_ids``' machines and those of jobs ``requester`` submitted."""

    maker_ids: frozenset[str] = frozenset()
    requester: str | None = None

    def clause(self) -> ColumnElement[bool]:
        """A WHERE condition on ``LedgerRow`` selecting the rows in scope."""
        conditions: list[ColumnElement[bool]] = []
        if self.maker_ids:
            conditions.append(LedgerRow.maker_id.in_(sorted(self.maker_ids)))
        if self.requester is not None:
            own = select(JobRow.id).where(JobRow.requester == self.requester)
            conditions.append(LedgerRow.job_id.in_(own))
        return or_(*conditions) if conditions else false()


def _between(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(LedgerRow.finished_at >= require_utc("since", since))
    if until is not None:
        where.append(LedgerRow.finished_at < require_utc("until", until))
    return where


class Ledger:
    """Read-only views of the ledger (entries are written by task completion only)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        maker_id: str | None = None,
    ) -> list[LedgerEntry]:
        """Entries finished in ``[since, until)`` (of one maker if given), oldest first."""
        query = select(LedgerRow).where(*_between(since, until)).order_by(LedgerRow.finished_at)
        if maker_id is not None:
            query = query.where(LedgerRow.maker_id == maker_id)
        with self._db.read() as s:
            return [ledger_from_row(r) for r in s.scalars(query)]

    def totals(
        self,
        by: LedgerKey | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        scope: LedgerScope | None = None,
    ) -> dict[str, Totals]:
        """Sums grouped ``by`` a key (``"all"`` when None), summed by the database; of the
        rows in ``scope`` only when given."""
        key = getattr(LedgerRow, by.value) if by is not None else literal("all")
        query = select(
            key,
            func.count(),
            func.coalesce(func.sum(LedgerRow.parts), 0),
            func.coalesce(func.sum(LedgerRow.grams), 0.0),
            func.coalesce(func.sum(LedgerRow.machine_hours), 0.0),
        ).where(*_between(since, until))
        if scope is not None:
            query = query.where(scope.clause())
        if by is not None:  # a constant in GROUP BY is an error on PostgreSQL
            query = query.group_by(key)
        out: dict[str, Totals] = {}
        with self._db.read() as s:
            for name, n, parts, grams, hours in s.execute(query):
                if n:
                    out[str(name)] = Totals(int(n), int(parts), float(grams), float(hours))
        return out

    def series(
        self,
        since: datetime,
        until: datetime,
        bucket: timedelta,
        by: LedgerKey = LedgerKey.MATERIAL,
    ) -> list[SeriesPoint]:
        """Totals per ``bucket`` between ``since`` and ``until`` per group (see core ``series``)."""
        return series(self.entries(since, until), since, until, bucket, by)

    def recent_hours_by_maker(
        self, now: datetime, window: timedelta = FAIRNESS_WINDOW
    ) -> dict[str, float]:
        """Machine-hours per maker finished in ``(now - window, now]``: the fairness tally."""
        now = require_utc("now", now)
        query = (
            select(LedgerRow.maker_id, func.sum(LedgerRow.machine_hours))
            .where(LedgerRow.finished_at > now - window, LedgerRow.finished_at <= now)
            .group_by(LedgerRow.maker_id)
        )
        with self._db.read() as s:
            return {maker: float(hours) for maker, hours in s.execute(query)}
