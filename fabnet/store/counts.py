"""Counts for ``/metrics`` (issue 10): attempts that ended badly by cause and machine, tasks
by state, machines on hold. Always read from the database, never kept in a process, so every
hub sharing the database reports the same figures (tasks by state: the sums of the jobs' kept
counts, see job_counts.py)."""

from __future__ import annotations

from sqlalchemy import func, select

from fabnet.core.states import FailureCause, TaskState
from fabnet.store.database import Database
from fabnet.store.job_counts import COLUMNS, JOBS
from fabnet.store.models import AttemptRow, MachineRow


class Counts:
    """Aggregates over the whole network; thread-safe, each call one read transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def failures(self) -> dict[tuple[FailureCause, str], int]:
        """Ended attempts with a failure cause, by (cause, machine id)."""
        query = (
            select(AttemptRow.failure, AttemptRow.machine_id, func.count())
            .where(AttemptRow.failure.is_not(None))
            .group_by(AttemptRow.failure, AttemptRow.machine_id)
        )
        with self._db.read() as s:
            return {(FailureCause(f), m): n for f, m, n in s.execute(query) if f is not None}

    def tasks_by_state(self) -> dict[TaskState, int]:
        """Every task state with its count (0 for states no task is in)."""
        columns = [JOBS.c[COLUMNS[state]] for state in TaskState]
        query = select(*(func.coalesce(func.sum(c), 0) for c in columns))
        with self._db.read() as s:
            sums = s.execute(query).one()
        return {state: int(n) for state, n in zip(TaskState, sums, strict=True)}

    def machines_held(self) -> int:
        query = select(func.count()).select_from(MachineRow).where(MachineRow.held_at.is_not(None))
        with self._db.read() as s:
            return int(s.scalar(query) or 0)
