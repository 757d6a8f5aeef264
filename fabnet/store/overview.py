"""Bounded reads for the operator's overview and the live stream: counts by GROUP BY, ledger
sums by the database, a LIMITed machine wall and a LIMITed list of stuck tasks.

Every call issues a fixed number of SQL statements whatever the size of the network.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select

from fabnet.core.ledger import LedgerKey, SeriesPoint, Totals
from fabnet.core.states import FINAL_TASK_STATES, LEASED_TASK_STATES, MachineState, TaskState
from fabnet.core.tasks import TaskSnapshot
from fabnet.store.columns import names_a_peer
from fabnet.store.convert import snapshot_from_row
from fabnet.store.database import Database
from fabnet.store.listings import ledger_series
from fabnet.store.models import AttemptRow, LedgerRow, MachineRow, TaskRow

# The wall and the machine counts show makers' machines; the pseudo-machine "peer:<hub>" that
# holds a task a peer hub makes (issue 12) is not one (the peers page shows that work)
REAL_MACHINE = ~names_a_peer(MachineRow.id)

# The wall shows machines in this order: what needs a look first.
WALL_ORDER = (
    MachineState.ERROR,
    MachineState.BUSY,
    MachineState.PAUSED,
    MachineState.IDLE,
    MachineState.OFFLINE,
)
MANY_OFFERS = 3  # a task offered this many times is stuck
LEASE_WARN = timedelta(seconds=5)  # a lease this close to running out marks the task stuck
_LEASED = sorted(s.value for s in LEASED_TASK_STATES)
_OPEN = sorted(s.value for s in TaskState if s not in FINAL_TASK_STATES)


@dataclass(frozen=True)
class WallMachine:
    """One machine on the wall with the task it holds under a lease (if any)."""

    machine_id: str
    state: str
    kind: str
    task_id: str | None
    progress: float


@dataclass(frozen=True)
class Wall:
    """The machines shown (at most the limit asked for) and how many machines there are."""

    machines: list[WallMachine]
    total: int


@dataclass(frozen=True)
class Production:
    """Ledger sums: ``total`` ever, ``today`` since UTC midnight, per material, and a series
    of ``SeriesPoint`` by material."""

    total: Totals
    today: Totals
    points: list[SeriesPoint]
    by_material: dict[str, Totals]


class OverviewReads:
    """Read-only, bounded queries over the whole network (or a set of makers)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def task_counts(self) -> dict[TaskState, int]:
        """Tasks per state, every state present (zero where none); one GROUP BY."""
        query = select(TaskRow.state, func.count()).group_by(TaskRow.state)
        with self._db.read() as s:
            found = {TaskState(state): int(n) for state, n in s.execute(query)}
        return {state: found.get(state, 0) for state in TaskState}

    def machine_counts(self) -> dict[str, dict[str, int]]:
        """Machines by kind, then by state; one GROUP BY."""
        query = (
            select(MachineRow.kind, MachineRow.state, func.count())
            .where(REAL_MACHINE)
            .group_by(MachineRow.kind, MachineRow.state)
        )
        out: dict[str, dict[str, int]] = {}
        with self._db.read() as s:
            for kind, state, n in s.execute(query):
                out.setdefault(str(kind), {})[str(state)] = int(n)
        return dict(sorted(out.items()))

    def wall(self, limit: int) -> Wall:
        """At most ``limit`` machines, errors and busy ones first (then by id), each with its
        leased task; three statements."""
        rank = case(
            {state.value: i for i, state in enumerate(WALL_ORDER)},
            value=MachineRow.state,
            else_=len(WALL_ORDER),
        )
        query = (
            select(MachineRow.id, MachineRow.state, MachineRow.kind)
            .where(REAL_MACHINE)
            .order_by(rank, MachineRow.id)
            .limit(limit)
        )
        with self._db.read() as s:
            total = int(s.scalar(select(func.count()).where(REAL_MACHINE)) or 0)
            rows = list(s.execute(query))
            held = _leased_on(s, [r[0] for r in rows])
        machines = [
            WallMachine(
                mid,
                state,
                kind,
                held[mid].task_id if mid in held else None,
                held[mid].progress if mid in held else 0.0,
            )
            for mid, state, kind in rows
        ]
        return Wall(machines, total)

    def leased_tasks(self, machine_ids: Collection[str]) -> dict[str, TaskSnapshot]:
        """The task each of ``machine_ids`` holds under a lease, by machine id; one statement."""
        with self._db.read() as s:
            return _leased_on(s, list(machine_ids))

    def stuck(self, now: datetime, limit: int) -> list[TaskSnapshot]:
        """At most ``limit`` tasks that need a look, with their attempts: leases about to run
        out, tasks offered ``MANY_OFFERS`` times or more, then the latest failures."""
        lease_short = (
            select(TaskRow)
            .where(TaskRow.state.in_(_LEASED), TaskRow.lease_until < now + LEASE_WARN)
            .order_by(TaskRow.lease_until)
            .limit(limit)
        )
        many_offers = (
            select(TaskRow)
            .where(TaskRow.state.in_(_OPEN), TaskRow.offer_no >= MANY_OFFERS)
            .order_by(TaskRow.offer_no.desc(), TaskRow.id)
            .limit(limit)
        )
        failed = (
            select(TaskRow)
            .where(TaskRow.state == TaskState.FAILED.value)
            .order_by(TaskRow.updated_at.desc(), TaskRow.id)
            .limit(limit)
        )
        with self._db.read() as s:
            found: dict[str, TaskRow] = {}
            for query in (lease_short, many_offers, failed):
                for row in s.scalars(query):
                    found.setdefault(row.id, row)
            rows = list(found.values())[:limit]
            attempts: dict[str, list[AttemptRow]] = {}
            ids = [r.id for r in rows]
            for a in s.scalars(select(AttemptRow).where(AttemptRow.task_id.in_(ids))):
                attempts.setdefault(a.task_id, []).append(a)
            return [snapshot_from_row(r, attempts.get(r.id, [])) for r in rows]

    def production(
        self,
        now: datetime,
        window: timedelta,
        bucket: timedelta,
        maker_ids: Collection[str] | None = None,
    ) -> Production:
        """Totals ever and since UTC midnight, per material, and grams by material per
        ``bucket`` over the last ``window``, of ``maker_ids`` (everyone's if None); two
        GROUP BY statements."""
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        by_material, today = self._sums(maker_ids, midnight)
        start = (now - window).replace(second=0, microsecond=0)
        points = ledger_series(self._db, start, now + bucket, bucket, LedgerKey.MATERIAL, maker_ids)
        return Production(sum(by_material.values(), Totals()), today, points, by_material)

    def _sums(
        self, maker_ids: Collection[str] | None, midnight: datetime
    ) -> tuple[dict[str, Totals], Totals]:
        """Per material: sums ever; and the sum since ``midnight`` — in one pass, so that the
        database reads a maker's entries by the maker index, not a day's by the time index."""
        today = LedgerRow.finished_at >= midnight

        def since(column: Any, zero: Any) -> Any:
            return func.coalesce(func.sum(case((today, column), else_=zero)), zero)

        query: Any = select(
            LedgerRow.material,
            func.count(),
            func.coalesce(func.sum(LedgerRow.parts), 0),
            func.coalesce(func.sum(LedgerRow.grams), 0.0),
            func.coalesce(func.sum(LedgerRow.machine_hours), 0.0),
            since(literal(1), 0),
            since(LedgerRow.parts, 0),
            since(LedgerRow.grams, 0.0),
            since(LedgerRow.machine_hours, 0.0),
        ).group_by(LedgerRow.material)
        if maker_ids is not None:
            query = query.where(LedgerRow.maker_id.in_(list(maker_ids)))
        by_material: dict[str, Totals] = {}
        day = Totals()
        with self._db.read() as s:
            for m, n, parts, grams, hours, n_day, parts_day, grams_day, hours_day in s.execute(
                query
            ):
                by_material[str(m)] = Totals(int(n), int(parts), float(grams), float(hours))
                day = day + Totals(int(n_day), int(parts_day), float(grams_day), float(hours_day))
        return by_material, day


def _leased_on(s: Any, machine_ids: list[str]) -> dict[str, TaskSnapshot]:
    if not machine_ids:
        return {}
    # Start from the machines' index (a few rows each), not the state index (every running
    # task): ``lower()`` keeps planners without statistics (SQLite) off the state index.
    query = select(TaskRow).where(
        TaskRow.machine_id.in_(machine_ids), func.lower(TaskRow.state).in_(_LEASED)
    )
    return {r.machine_id: snapshot_from_row(r, []) for r in s.scalars(query) if r.machine_id}
