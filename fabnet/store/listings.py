"""Paged, owner-filtered reads for the web layer: jobs, machines, makers and waiting offers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, extract, func, select

from fabnet.core.ledger import LedgerKey, SeriesPoint, Totals
from fabnet.core.machines import Machine
from fabnet.core.states import TaskState
from fabnet.core.tasks import TaskSnapshot
from fabnet.errors import InvalidInput
from fabnet.store.convert import machine_from_row, snapshot_from_row
from fabnet.store.database import Database
from fabnet.store.jobs import JobInfo, job_info
from fabnet.store.ledger import LedgerScope
from fabnet.store.models import JobRow, LedgerRow, MachineRow, MakerRow, TaskRow


@dataclass(frozen=True)
class MakerSummary:
    maker_id: str
    name: str
    machines: int
    machines_by_state: dict[str, int]


@dataclass(frozen=True)
class WaitingOffer:
    """An offer waiting for a maker's decision."""

    task_id: str
    job_id: str
    machine_id: str
    offer_no: int
    offer_until: datetime | None
    design_id: str
    material: str
    parts: int


@dataclass(frozen=True)
class JobProgress:
    """How far a job is: its tasks, how many are done, and the overall fraction (0..1)."""

    total: int
    done: int
    fraction: float


class Listings:
    """Read-only queries with ``limit``/``offset``; ``maker_ids=None`` means every maker."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def jobs(self, requester: str | None, limit: int, offset: int) -> list[JobInfo]:
        """Jobs newest first (of one requester if given)."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id)
        if requester is not None:
            query = query.where(JobRow.requester == requester)
        with self._db.read() as s:
            return [job_info(r) for r in s.scalars(query.limit(limit).offset(offset))]

    def machines(
        self,
        maker_ids: Collection[str] | None,
        limit: int,
        offset: int,
        state: str | None = None,
    ) -> list[Machine]:
        """Machines by id, of the given makers (all if None), optionally in one state."""
        query = select(MachineRow).order_by(MachineRow.id)
        if maker_ids is not None:
            query = query.where(MachineRow.maker_id.in_(list(maker_ids)))
        if state is not None:
            query = query.where(MachineRow.state == state)
        with self._db.read() as s:
            return [machine_from_row(r) for r in s.scalars(query.limit(limit).offset(offset))]

    def makers(
        self, maker_ids: Collection[str] | None, limit: int, offset: int
    ) -> list[MakerSummary]:
        """Makers by id with how many machines they have in each state."""
        query = select(MakerRow).order_by(MakerRow.id)
        if maker_ids is not None:
            query = query.where(MakerRow.id.in_(list(maker_ids)))
        with self._db.read() as s:
            makers = list(s.scalars(query.limit(limit).offset(offset)))
            counts = s.execute(
                select(MachineRow.maker_id, MachineRow.state, func.count())
                .where(MachineRow.maker_id.in_([m.id for m in makers]))
                .group_by(MachineRow.maker_id, MachineRow.state)
            )
            by_maker: dict[str, dict[str, int]] = {}
            for maker_id, state, n in counts:
                by_maker.setdefault(maker_id, {})[state] = n
        return [
            MakerSummary(m.id, m.name, sum(by_maker.get(m.id, {}).values()), by_maker.get(m.id, {}))
            for m in makers
        ]

    def count_machines(self, maker_ids: Collection[str] | None) -> int:
        """How many machines the given makers (all if None) have; one COUNT."""
        query = select(func.count()).select_from(MachineRow)
        if maker_ids is not None:
            query = query.where(MachineRow.maker_id.in_(list(maker_ids)))
        with self._db.read() as s:
            return int(s.scalar(query) or 0)

    def count_offers(self, maker_ids: Collection[str] | None) -> int:
        """How many offers wait for a decision of the given makers (all if None); one COUNT."""
        query = (
            select(func.count())
            .select_from(TaskRow)
            .join(MachineRow, MachineRow.id == TaskRow.machine_id)
            .where(_offered(maker_ids), _asks_maker())
        )
        with self._db.read() as s:
            return int(s.scalar(query) or 0)

    def job_tasks(self, job_id: str, limit: int) -> tuple[list[TaskSnapshot], JobProgress]:
        """The first ``limit`` tasks of a job in order, and its progress over all its tasks
        (a done task counts 1, others their progress); two statements."""
        done = TaskState.DONE.value
        sums = select(
            func.count(),
            func.coalesce(func.sum(case((TaskRow.state == done, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((TaskRow.state == done, 1.0), else_=TaskRow.progress)), 0.0
            ),
        ).where(TaskRow.job_id == job_id)
        query = select(TaskRow).where(TaskRow.job_id == job_id).order_by(TaskRow.index)
        with self._db.read() as s:
            total, n_done, progress = s.execute(sums).one()
            tasks = [snapshot_from_row(r, []) for r in s.scalars(query.limit(limit))]
        fraction = float(progress) / total if total else 0.0
        return tasks, JobProgress(int(total), int(n_done), fraction)

    def ledger_series(
        self,
        since: datetime,
        until: datetime,
        bucket: timedelta,
        by: LedgerKey,
        maker_ids: Collection[str] | None = None,
        scope: LedgerScope | None = None,
    ) -> list[SeriesPoint]:
        """See the module's ``ledger_series``."""
        return ledger_series(self._db, since, until, bucket, by, maker_ids, scope)

    def tasks_on_machine(self, machine_id: str, limit: int) -> list[TaskSnapshot]:
        """Unfinished tasks held by ``machine_id`` (offered, claimed, running…)."""
        query = (
            select(TaskRow)
            .where(TaskRow.machine_id == machine_id)
            .order_by(TaskRow.updated_at.desc())
            .limit(limit)
        )
        with self._db.read() as s:
            return [snapshot_from_row(r, []) for r in s.scalars(query)]

    def waiting_offers(
        self, maker_ids: Collection[str] | None, limit: int, offset: int
    ) -> list[tuple[TaskSnapshot, Machine]]:
        """Tasks offered to machines that ask their maker (policy auto_accept false), with
        those machines, soonest lapsing first."""
        query = (
            select(TaskRow, MachineRow)
            .join(MachineRow, MachineRow.id == TaskRow.machine_id)
            .where(_offered(maker_ids), _asks_maker())
            .order_by(TaskRow.offer_until, TaskRow.id)
            .limit(limit)
            .offset(offset)
        )
        with self._db.read() as s:
            return [(snapshot_from_row(t, []), machine_from_row(m)) for t, m in s.execute(query)]

    def offer_rows(
        self, maker_ids: Collection[str] | None, limit: int, offset: int
    ) -> list[WaitingOffer]:
        """``waiting_offers`` as flat rows with their job's design and material; one query."""
        query = (
            select(
                TaskRow.id,
                TaskRow.job_id,
                TaskRow.machine_id,
                TaskRow.offer_no,
                TaskRow.offer_until,
                JobRow.design_id,
                JobRow.material,
                TaskRow.parts,
            )
            .join(MachineRow, MachineRow.id == TaskRow.machine_id)
            .join(JobRow, JobRow.id == TaskRow.job_id)
            .where(_offered(maker_ids), _asks_maker())
            .order_by(TaskRow.offer_until, TaskRow.id)
            .limit(limit)
            .offset(offset)
        )
        with self._db.read() as s:
            return [
                WaitingOffer(t, j, m or "", n, until, d, mat, parts)
                for t, j, m, n, until, d, mat, parts in s.execute(query)
            ]


def _offered(maker_ids: Collection[str] | None) -> Any:
    """Offered tasks; of the machines of ``maker_ids`` when given.

    For some makers the query must start from their few machines (maker index, then the
    tasks' machine index), not from every offered task: the state test is then wrapped in
    ``lower()`` so that no planner picks the state index for it."""
    offered = TaskState.OFFERED.value
    if maker_ids is None:
        return TaskRow.state == offered
    mine = select(MachineRow.id).where(MachineRow.maker_id.in_(list(maker_ids)))
    return and_(TaskRow.machine_id.in_(mine), func.lower(TaskRow.state) == offered)


def _asks_maker() -> Any:
    """Machines whose policy has auto_accept false (JSON, on SQLite and PostgreSQL)."""
    return MachineRow.policy["auto_accept"].as_boolean().is_(False)


def _epoch_s(db: Database, column: Any) -> Any:
    """Seconds since 1970 of a naive-UTC timestamp column, in the database's dialect."""
    if db.is_sqlite:
        return cast(func.strftime("%s", column), Integer)
    return func.floor(extract("epoch", column))


def ledger_series(
    db: Database,
    since: datetime,
    until: datetime,
    bucket: timedelta,
    by: LedgerKey,
    maker_ids: Collection[str] | None = None,
    scope: LedgerScope | None = None,
) -> list[SeriesPoint]:
    """``fabnet.core.ledger.series`` summed by the database: totals per bucket from ``since``
    (inclusive) to ``until`` (exclusive) per group, zero-filled for every group seen; of the
    makers ``maker_ids`` and the rows in ``scope`` only when given."""
    bucket_s = int(bucket.total_seconds())
    if bucket_s < 1:
        raise InvalidInput(f"bucket must be at least 1 s, got {bucket}")
    count = max(0, -(-(until - since) // bucket))
    origin = int(since.timestamp())
    slot = ((_epoch_s(db, LedgerRow.finished_at) - origin) / bucket_s).label("slot")
    slot_int = cast(func.floor(slot), Integer) if not db.is_sqlite else cast(slot, Integer)
    key = getattr(LedgerRow, by.value)
    query = (
        select(
            slot_int,
            key,
            func.count(),
            func.coalesce(func.sum(LedgerRow.parts), 0),
            func.coalesce(func.sum(LedgerRow.grams), 0.0),
            func.coalesce(func.sum(LedgerRow.machine_hours), 0.0),
        )
        .where(LedgerRow.finished_at >= since, LedgerRow.finished_at < until)
        .group_by(slot_int, key)
    )
    if maker_ids is not None:
        query = query.where(LedgerRow.maker_id.in_(list(maker_ids)))
    if scope is not None:
        query = query.where(scope.clause())
    sums: dict[tuple[int, str], Totals] = {}
    with db.read() as s:
        for n, k, tasks, parts, grams, hours in s.execute(query):
            sums[(int(n), str(k))] = Totals(int(tasks), int(parts), float(grams), float(hours))
    keys = sorted({k for _, k in sums})
    return [
        SeriesPoint(since + i * bucket, k, sums.get((i, k), Totals()))
        for i in range(count)
        for k in keys
    ]
