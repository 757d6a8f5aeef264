"""Jobs in the database: submit (split into tasks by the core), read, cancel."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from fabnet.core.events import TaskCancelled
from fabnet.core.jobs import JobSpec, job_state, split_job
from fabnet.core.states import JobState, TaskState
from fabnet.core.tasks import Transition
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput, NotFound
from fabnet.store.convert import job_from_row, job_to_row
from fabnet.store.database import Database
from fabnet.store.models import DesignRow, JobRow, TaskRow
from fabnet.store.tasks import Tasks


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
            job = job_to_row(spec, now)
            s.add(job)
            s.flush()
            plans = split_job(spec)
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
        """The job ``job_id`` with its derived state; raises ``NotFound``."""
        with self._db.read() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id} not found")
            counts = s.execute(
                select(TaskRow.state, func.count())
                .where(TaskRow.job_id == job_id)
                .group_by(TaskRow.state)
            )
            by_state = {TaskState(state): n for state, n in counts}
            return _info(job_from_row(row), by_state)

    def find(self, requester: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The newest jobs (of one requester if given), newest first."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if requester is not None:
            query = query.where(JobRow.requester == requester)
        with self._db.read() as s:
            rows = list(s.scalars(query))
            counts = s.execute(
                select(TaskRow.job_id, TaskRow.state, func.count())
                .where(TaskRow.job_id.in_([r.id for r in rows]))
                .group_by(TaskRow.job_id, TaskRow.state)
            )
            by_job: dict[str, dict[TaskState, int]] = {}
            for job_id, state, n in counts:
                by_job.setdefault(job_id, {})[TaskState(state)] = n
            return [_info(job_from_row(r), by_job.get(r.id, {})) for r in rows]

    def cancel(self, job_id: str, now: datetime, reason: str = "") -> list[Transition]:
        """Cancel every non-final task of the job (one transaction per task).

        Returns the transitions made; raises ``NotFound`` for an unknown job.
        """
        self.get(job_id)
        done: list[Transition] = []
        for task in self._tasks.find(job_id=job_id, limit=1_000_000):
            if task.state.is_final:
                continue
            out = self._tasks.apply_event(task.task_id, TaskCancelled(reason=reason), now)
            if isinstance(out, Transition):
                done.append(out)
        return done


def _info(spec: JobSpec, by_state: dict[TaskState, int]) -> JobInfo:
    states = Counter(by_state)
    return JobInfo(spec, job_state(states.elements()), dict(by_state))
