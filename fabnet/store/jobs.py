"""Jobs in the database: submit (split into tasks by the core), read, cancel."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fabnet.core.events import TaskCancelled
from fabnet.core.jobs import JobSpec, job_state, split_job
from fabnet.core.states import JobState, TaskState
from fabnet.core.tasks import Transition
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput, NotFound
from fabnet.store.convert import job_from_row, job_to_row
from fabnet.store.database import Database
from fabnet.store.job_counts import CountDeltas, counts_of, initial_counts
from fabnet.store.models import DesignRow, JobRow, TaskRow
from fabnet.store.tasks import Tasks
from fabnet.store.transitions import apply_locked


@dataclass(frozen=True)
class JobInfo:
    """A job, its derived state and how many of its tasks are in each state."""

    spec: JobSpec
    state: JobState
    tasks_by_state: dict[TaskState, int]


class Jobs:
    """Submitting, reading and cancelling jobs."""

    def __init__(self, db: Database, tasks: Tasks) -> None:
        self._db = db
        self._tasks = tasks

    def submit(self, spec: JobSpec, now: datetime) -> JobInfo:
        """Store ``spec`` and its tasks (``split_job``) in one transaction, all queued.

        Raises ``NotFound`` for an unknown design, ``InvalidInput`` for a duplicate job id.
        """
        now = require_utc("now", now)
        with self._db.write() as s:
            if s.get(DesignRow, spec.design_id) is None:
                raise NotFound(f"design {spec.design_id} not found")
            if s.get(JobRow, spec.job_id) is not None:
                raise InvalidInput(f"job_id {spec.job_id} already exists")
            plans = split_job(spec)
            job = job_to_row(spec, now)
            for name, n in initial_counts(len(plans)).items():
                setattr(job, name, n)
            s.add(job)
            s.flush()
            for plan in plans:
                s.add(
                    TaskRow(
                        id=plan.task_id,
                        job_id=spec.job_id,
                        index=plan.index,
                        parts=plan.parts,
                        size_x_mm=plan.size_mm[0],
                        size_y_mm=plan.size_mm[1],
                        size_z_mm=plan.size_mm[2],
                        estimated_hours=plan.estimated_hours,
                        kind=spec.kind.value,
                        material=spec.material,
                        nozzle_mm=spec.nozzle_mm,
                        priority=spec.priority,
                        deadline=spec.deadline,
                        state=TaskState.QUEUED.value,
                        max_attempts=spec.max_attempts,
                        offer_no=0,
                        machine_id=None,
                        offer_until=None,
                        lease_until=None,
                        progress=0.0,
                        created_at=job.created_at,
                        updated_at=now,
                    )
                )
            stored = job_from_row(job)
        return JobInfo(stored, JobState.QUEUED, {TaskState.QUEUED: len(plans)})

    def get(self, job_id: str) -> JobInfo:
        """The job ``job_id`` with its derived state (from its kept counts); raises
        ``NotFound``."""

        def read(s: Session) -> JobInfo:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id} not found")
            return job_info(row)

        return self._db.reading(read)

    def find(self, requester: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The newest jobs (of one requester if given), newest first."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if requester is not None:
            query = query.where(JobRow.requester == requester)
        return self._db.reading(lambda s: [job_info(r) for r in s.scalars(query)])

    def cancel(self, job_id: str, now: datetime, reason: str = "") -> list[Transition]:
        """Cancel every non-final task of the job, in one transaction.

        Returns the transitions made; raises ``NotFound`` for an unknown job.
        """
        now = require_utc("now", now)
        open_states = [state.value for state in TaskState if not state.is_final]
        query = (
            select(TaskRow)
            .where(TaskRow.job_id == job_id, TaskRow.state.in_(open_states))
            .order_by(TaskRow.id)
            .with_for_update()
        )
        with self._db.write() as s:
            if s.get(JobRow, job_id) is None:
                raise NotFound(f"job {job_id} not found")
            counts = CountDeltas()
            done: list[Transition] = []
            for row in s.scalars(query):
                event = TaskCancelled(reason=reason)
                out = apply_locked(s, row.id, event, now, counts, row)
                if isinstance(out, Transition):
                    done.append(out)
            counts.write(s)
        return done


def job_info(row: JobRow) -> JobInfo:
    """``row`` with the state its kept task counts give."""
    return _info(job_from_row(row), counts_of(row))


def _info(spec: JobSpec, by_state: dict[TaskState, int]) -> JobInfo:
    states = Counter(by_state)
    return JobInfo(spec, job_state(states.elements()), dict(by_state))
