"""A job's task counts by state, kept on its ``jobs`` row (``tasks_<state>`` columns).

Every transaction that moves tasks collects the moves in a ``CountDeltas`` and writes them
just before it commits: one ``UPDATE jobs SET tasks_x = tasks_x + d`` per job touched, in job
id order, so two transactions never wait for each other's job rows in opposite orders. Reading
a job's state is then one row, not a recount of its tasks (issue 9: a 2,000-task job cost +26 %
per task when it was recounted twice per task). ``backfill`` fills the columns of jobs from an
older fabnet once, on start.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy import Connection, Engine, Table, func, select, update
from sqlalchemy.orm import Session

from fabnet.core.states import TaskState
from fabnet.store.models import Base, JobRow

log = logging.getLogger(__name__)

JOBS: Table = Base.metadata.tables["jobs"]
COLUMNS: dict[TaskState, str] = {state: f"tasks_{state.value}" for state in TaskState}
_BACKFILL_CHUNK = 500  # jobs recounted per statement on start


class CountDeltas:
    """Task moves of one transaction, summed per (job, state) until ``write``."""

    def __init__(self) -> None:
        self._by_job: dict[str, Counter[TaskState]] = {}

    def add(self, job_id: str, state: TaskState, n: int = 1) -> None:
        """``n`` more tasks of ``job_id`` in ``state`` (negative: fewer)."""
        self._by_job.setdefault(job_id, Counter())[state] += n

    def move(self, job_id: str, from_state: TaskState, to_state: TaskState) -> None:
        """One task of ``job_id`` went from ``from_state`` to ``to_state`` (same: nothing)."""
        if from_state is not to_state:
            self.add(job_id, from_state, -1)
            self.add(job_id, to_state, +1)

    def merge(self, other: CountDeltas) -> None:
        """Add ``other``'s moves to these (an item's savepoint was released)."""
        for job_id, deltas in other._by_job.items():
            self._by_job.setdefault(job_id, Counter()).update(deltas)

    def write(self, s: Session) -> None:
        """Apply the sums to the jobs rows in ``s``'s transaction, then forget them."""
        for job_id in sorted(self._by_job):
            values = {
                COLUMNS[state]: JOBS.c[COLUMNS[state]] + n
                for state, n in sorted(self._by_job[job_id].items())
                if n
            }
            if values:
                s.execute(update(JOBS).where(JOBS.c.id == job_id).values(values))
        self._by_job.clear()


def counts_of(row: JobRow) -> dict[TaskState, int]:
    """The states ``row``'s tasks are in, with their counts (states with none left out)."""
    found = {state: getattr(row, name) for state, name in COLUMNS.items()}
    return {state: int(n) for state, n in found.items() if n}


def initial_counts(queued: int) -> dict[str, int]:
    """The count columns of a job just submitted with ``queued`` tasks."""
    return {name: (queued if state is TaskState.QUEUED else 0) for state, name in COLUMNS.items()}


def backfill(engine: Engine) -> int:
    """Count the tasks of every job whose counts are not set (jobs of an older fabnet);
    returns how many jobs were filled. Safe to run from several processes at once: each job
    is filled by a guarded ``UPDATE ... WHERE tasks_queued IS NULL``."""
    filled = 0
    with engine.begin() as conn:
        missing = list(
            conn.scalars(select(JOBS.c.id).where(JOBS.c[COLUMNS[TaskState.QUEUED]].is_(None)))
        )
        for start in range(0, len(missing), _BACKFILL_CHUNK):
            filled += _fill(conn, missing[start : start + _BACKFILL_CHUNK])
    if filled:
        log.info("database upgraded: task counts filled in for %d jobs", filled)
    return filled


def _fill(conn: Connection, job_ids: list[str]) -> int:
    tasks = Base.metadata.tables["tasks"]
    by_job: dict[str, dict[str, int]] = {j: initial_counts(0) for j in job_ids}
    rows = conn.execute(
        select(tasks.c.job_id, tasks.c.state, func.count())
        .where(tasks.c.job_id.in_(job_ids))
        .group_by(tasks.c.job_id, tasks.c.state)
    )
    for job_id, state, n in rows:
        by_job[job_id][COLUMNS[TaskState(state)]] = int(n)
    filled = 0
    for job_id, values in by_job.items():
        done = conn.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c[COLUMNS[TaskState.QUEUED]].is_(None))
            .values(values)
        )
        filled += done.rowcount
    return filled
