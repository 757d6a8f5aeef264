"""Counts for ``/metrics`` (issue 10): attempts that ended badly by cause and machine, tasks
by state, machines on hold. Always read from the tables, never kept as counters, so every hub
sharing the database reports the same figures."""

from __future__ import annotations

from sqlalchemy import func, select

from fabnet.core.states import FailureCause, TaskState
from fabnet.store.database import Database
from fabnet.store.models import AttemptRow, MachineRow, TaskRow


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
        query = select(TaskRow.state, func.count()).group_by(TaskRow.state)
        with self._db.read() as s:
            found = {TaskState(state): n for state, n in s.execute(query)}
        return {state: found.get(state, 0) for state in TaskState}

    def machines_held(self) -> int:
        query = select(func.count()).select_from(MachineRow).where(MachineRow.held_at.is_not(None))
        with self._db.read() as s:
            return int(s.scalar(query) or 0)
