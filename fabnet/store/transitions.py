"""Moving one task inside a caller's transaction: lock its row, run the core's ``apply``,
write the task, its attempt, the event, the ledger entry on done and the job's count moves.

Callers (``Tasks``) own the transaction and decide how many tasks it moves; this module never
commits. On PostgreSQL the task row is locked ``FOR UPDATE``; on SQLite the caller's write
transaction opened with ``BEGIN IMMEDIATE`` already holds the one write lock.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabnet.core.events import TaskEvent, event_kind
from fabnet.core.lifecycle import apply
from fabnet.core.states import IgnoreReason, TaskState
from fabnet.core.tasks import Ignored, Outcome, Transition
from fabnet.errors import NotFound
from fabnet.store.convert import snapshot_from_row, write_snapshot
from fabnet.store.job_counts import CountDeltas
from fabnet.store.models import AttemptRow, EventRow, JobRow, LedgerRow, MachineRow, TaskRow

log = logging.getLogger(__name__)

DETAIL_MAX = 500


def attempt_rows(s: Session, task_id: str) -> list[AttemptRow]:
    """The attempts of ``task_id`` (any order)."""
    return list(s.scalars(select(AttemptRow).where(AttemptRow.task_id == task_id)))


def apply_locked(
    s: Session,
    task_id: str,
    event: TaskEvent,
    now: datetime,
    counts: CountDeltas,
    row: TaskRow | None = None,
) -> Outcome:
    """Apply ``event`` to ``task_id`` in ``s``; its job's count move goes to ``counts``.

    ``row`` is the task's row when the caller already locked it. Raises ``NotFound``.
    """
    if row is None:
        row = s.get(TaskRow, task_id, with_for_update=True)
        if row is None:
            raise NotFound(f"task {task_id} not found")
    seen = s.get(EventRow, event.event_id) is not None
    attempts = attempt_rows(s, task_id)
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
    _write_attempts(s, task_id, outcome, attempts)
    s.add(_event_row(task_id, event, now, snapshot.state, outcome, None))
    if outcome.completed is not None:
        _add_ledger_entry(s, row, outcome, now)
    counts.move(row.job_id, outcome.from_state, outcome.to_state)
    return outcome


def _write_attempts(
    s: Session, task_id: str, outcome: Transition, attempts: list[AttemptRow]
) -> None:
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
                a_row.detail = ended.detail[:DETAIL_MAX]
                a_row.failure = ended.failure.value if ended.failure else None


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
        detail=(ignored.detail if ignored else "")[:DETAIL_MAX],
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
