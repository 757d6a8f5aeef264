"""Task transitions in the database: each event is applied in one transaction, once.

``apply_event`` locks the task row (``FOR UPDATE`` on PostgreSQL; on SQLite the write
transaction opens with ``BEGIN IMMEDIATE``), checks whether the event id was seen, runs the
core's pure ``apply`` and writes the task, the attempt, the event and — on done — the ledger
entry together. Ignored events are recorded too (with their reason) unless duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabnet.core.events import (
    LeaseExpired,
    MachineWentOffline,
    OfferTimedOut,
    TaskEvent,
    event_kind,
)
from fabnet.core.lifecycle import apply
from fabnet.core.matching import TaskRequest
from fabnet.core.states import (
    LEASED_TASK_STATES,
    AttemptCause,
    IgnoreReason,
    MachineState,
    TaskState,
)
from fabnet.core.tasks import Ignored, Outcome, TaskSnapshot, Transition
from fabnet.core.timeutil import require_utc
from fabnet.errors import NotFound
from fabnet.store.convert import request_from_row, snapshot_from_row, write_snapshot
from fabnet.store.database import Database
from fabnet.store.models import AttemptRow, EventRow, JobRow, LedgerRow, MachineRow, TaskRow

log = logging.getLogger(__name__)

_DETAIL_MAX = 500


class Tasks:
    """Reading tasks and moving them through their state machine."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, task_id: str) -> TaskSnapshot:
        """The task with its attempts; raises ``NotFound``."""
        with self._db.read() as s:
            row = s.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"task {task_id} not found")
            return snapshot_from_row(row, _attempt_rows(s, task_id))

    def find(
        self, job_id: str | None = None, state: TaskState | None = None, limit: int = 1000
    ) -> list[TaskSnapshot]:
        """Tasks of a job and/or in a state, in job order (attempts not loaded)."""
        query = select(TaskRow).order_by(TaskRow.job_id, TaskRow.index).limit(limit)
        if job_id is not None:
            query = query.where(TaskRow.job_id == job_id)
        if state is not None:
            query = query.where(TaskRow.state == state.value)
        with self._db.read() as s:
            return [snapshot_from_row(r, []) for r in s.scalars(query)]

    def count_by_state(self, job_id: str | None = None) -> dict[TaskState, int]:
        """How many tasks are in each state (of one job, or of all), in one GROUP BY."""
        query = select(TaskRow.state, func.count()).group_by(TaskRow.state)
        if job_id is not None:
            query = query.where(TaskRow.job_id == job_id)
        with self._db.read() as s:
            return {TaskState(state): int(n) for state, n in s.execute(query)}

    def queued(self, limit: int = 1000) -> list[TaskRequest]:
        """Up to ``limit`` queued tasks as match requests, in match order.

        Order: priority (high first), deadline (none last), age. Machines that failed a task
        before are in its ``avoid_machines``.
        """
        query = (
            select(TaskRow)
            .where(TaskRow.state == TaskState.QUEUED.value)
            .order_by(
                TaskRow.priority.desc(),
                TaskRow.deadline.asc().nulls_last(),
                TaskRow.created_at,
                TaskRow.id,
            )
            .limit(limit)
        )
        with self._db.read() as s:
            rows = list(s.scalars(query))
            failed = s.execute(
                select(AttemptRow.task_id, AttemptRow.machine_id).where(
                    AttemptRow.task_id.in_([r.id for r in rows]),
                    AttemptRow.cause == AttemptCause.FAILED.value,
                )
            )
            avoid: dict[str, set[str]] = {}
            for task_id, machine_id in failed:
                avoid.setdefault(task_id, set()).add(machine_id)
            return [request_from_row(r, frozenset(avoid.get(r.id, ()))) for r in rows]

    def apply_event(self, task_id: str, event: TaskEvent, now: datetime) -> Outcome:
        """Apply ``event`` to task ``task_id`` at ``now`` in one transaction.

        Returns the core's ``Transition`` or ``Ignored``; a duplicate event id changes
        nothing. Raises ``NotFound`` for an unknown task.
        """
        now = require_utc("now", now)
        try:
            with self._db.write() as s:
                return _apply_locked(s, task_id, event, now)
        except IntegrityError:
            # Only reachable if another transaction recorded this event id first.
            log.info("event %s for task %s raced a duplicate", event.event_id, task_id)
            return Ignored(event.event_id, IgnoreReason.DUPLICATE, "recorded concurrently")

    def expire_leases(self, now: datetime) -> list[Transition]:
        """Requeue (or fail) every task whose lease ran out at ``now``; one transaction each."""
        now = require_utc("now", now)
        leased = [s.value for s in LEASED_TASK_STATES]
        ids = self._ids(
            select(TaskRow.id).where(TaskRow.state.in_(leased), TaskRow.lease_until <= now)
        )
        return self._apply_each(ids, LeaseExpired, now)

    def expire_offers(self, now: datetime) -> list[Transition]:
        """Requeue every offered task whose offer lapsed at ``now``; one transaction each."""
        now = require_utc("now", now)
        ids = self._ids(
            select(TaskRow.id).where(
                TaskRow.state == TaskState.OFFERED.value, TaskRow.offer_until <= now
            )
        )
        return self._apply_each(ids, OfferTimedOut, now)

    def machine_offline(self, machine_id: str, now: datetime) -> list[Transition]:
        """Record ``machine_id`` offline and requeue the tasks it was offered or held."""
        now = require_utc("now", now)
        with self._db.write() as s:
            row = s.get(MachineRow, machine_id)
            if row is None:
                raise NotFound(f"machine {machine_id} not found")
            row.state = MachineState.OFFLINE.value
        ids = self._ids(select(TaskRow.id).where(TaskRow.machine_id == machine_id))
        done: list[Transition] = []
        for task_id in ids:
            out = self.apply_event(task_id, MachineWentOffline(machine_id=machine_id), now)
            if isinstance(out, Transition):
                done.append(out)
        return done

    def _ids(self, query: Select[str]) -> list[str]:
        with self._db.read() as s:
            return list(s.scalars(query))

    def _apply_each(
        self, ids: Iterable[str], make: type[LeaseExpired] | type[OfferTimedOut], now: datetime
    ) -> list[Transition]:
        done: list[Transition] = []
        for task_id in ids:
            out = self.apply_event(task_id, make(), now)
            if isinstance(out, Transition):
                done.append(out)
        return done


def _attempt_rows(s: Session, task_id: str) -> list[AttemptRow]:
    return list(s.scalars(select(AttemptRow).where(AttemptRow.task_id == task_id)))


def _apply_locked(s: Session, task_id: str, event: TaskEvent, now: datetime) -> Outcome:
    row = s.get(TaskRow, task_id, with_for_update=True)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    seen = s.get(EventRow, event.event_id) is not None
    attempts = _attempt_rows(s, task_id)
    snapshot = snapshot_from_row(
        row, attempts, frozenset({event.event_id}) if seen else frozenset()
    )
    outcome = apply(snapshot, event, now)
    if isinstance(outcome, Ignored):
        if outcome.reason is not IgnoreReason.DUPLICATE:
            s.add(_event_row(task_id, event, now, snapshot.state, None, outcome))
        log.debug("task %s: %s ignored (%s)", task_id, event_kind(event), outcome.detail)
        return outcome
    write_snapshot(row, outcome.task)
    if outcome.attempt_started is not None:
        a = outcome.attempt_started
        s.add(
            AttemptRow(
                task_id=task_id,
                number=a.number,
                machine_id=a.machine_id,
                offer_no=a.offer_no,
                started_at=a.started_at,
                ended_at=None,
                cause=None,
                detail="",
            )
        )
    if outcome.attempt_ended is not None:
        ended = outcome.attempt_ended
        for a_row in attempts:
            if a_row.number == ended.number:
                a_row.ended_at = ended.ended_at
                a_row.cause = ended.cause.value if ended.cause else None
                a_row.detail = ended.detail[:_DETAIL_MAX]
                a_row.failure = ended.failure.value if ended.failure else None
    s.add(_event_row(task_id, event, now, snapshot.state, outcome, None))
    if outcome.completed is not None:
        _add_ledger_entry(s, row, outcome, now)
    return outcome


def _event_row(
    task_id: str,
    event: TaskEvent,
    now: datetime,
    from_state: TaskState,
    moved: Transition | None,
    ignored: Ignored | None,
) -> EventRow:
    return EventRow(
        event_id=event.event_id,
        task_id=task_id,
        kind=event_kind(event),
        at=now,
        from_state=from_state.value,
        to_state=moved.to_state.value if moved else None,
        cause=moved.cause.value if moved else None,
        ignored=ignored.reason.value if ignored else None,
        detail=(ignored.detail if ignored else "")[:_DETAIL_MAX],
    )


def _add_ledger_entry(s: Session, task: TaskRow, moved: Transition, now: datetime) -> None:
    completed = moved.completed
    assert completed is not None
    job = s.get(JobRow, task.job_id)
    machine = s.get(MachineRow, completed.machine_id)
    if job is None or machine is None:
        raise NotFound(f"job {task.job_id} or machine {completed.machine_id} not found")
    s.add(
        LedgerRow(
            task_id=task.id,
            job_id=job.id,
            maker_id=machine.maker_id,
            machine_id=machine.id,
            design_id=job.design_id,
            material=task.material,
            grams=completed.grams,
            machine_hours=completed.machine_hours,
            parts=task.parts,
            finished_at=now,
        )
    )
