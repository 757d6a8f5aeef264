"""A job's kept task counts always equal a recount of its tasks, whatever mix of events,
batches, offers, sweeps, cancels and machines going offline moved them (hypothesis); and an
older database's jobs get their counts on start."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from store_jobs_support import submit

from fabnet.core.events import (
    TaskAccepted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskDeclined,
    TaskEvent,
    TaskFailed,
    TaskOffered,
    TaskProgressed,
    TaskReleased,
    TaskStarted,
)
from fabnet.core.machines import Machine
from fabnet.core.matching import TaskRequest
from fabnet.core.states import TaskState
from fabnet.store import Store
from fabnet.store.counts import Counts
from fabnet.store.job_counts import COLUMNS
from fabnet.store.models import JobRow, TaskRow

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
MACHINES = ("k0-m0", "k0-m1", "k1-m0")
TASKS = 4
Fleet = Callable[..., list[Machine]]

AGENT_KINDS = ("accept", "decline", "assign", "start", "progress", "complete", "fail", "release")
task_index = st.integers(0, TASKS - 1)
agent_op = st.tuples(st.just("agent"), st.sampled_from(AGENT_KINDS), task_index, st.booleans())
ops = st.lists(
    st.one_of(
        agent_op,
        st.tuples(st.just("batch"), st.lists(agent_op, min_size=1, max_size=5), st.booleans()),
        st.tuples(st.just("offer"), task_index, st.sampled_from(MACHINES)),
        st.tuples(st.just("offer_queued"), st.integers(1, TASKS + 1)),
        st.tuples(st.just("expire"), st.integers(0, 180)),
        st.tuples(st.just("offline"), st.sampled_from(MACHINES)),
        st.tuples(st.just("cancel_task"), task_index),
        st.tuples(
            st.just("cancel_job"),
        ),
    ),
    max_size=25,
)


def agent_event(store: Store, kind: str, task_id: str, right: bool) -> TaskEvent:
    """An agent's event about ``task_id``, answering its current offer (or a wrong one)."""
    task = store.tasks.get(task_id)
    machine = task.machine_id or MACHINES[0]
    offer_no = task.offer_no if right else task.offer_no + 1
    if kind == "accept":
        return TaskAccepted(machine_id=machine, offer_no=offer_no)
    if kind == "decline":
        return TaskDeclined(machine_id=machine, offer_no=offer_no)
    if kind == "assign":
        return TaskAssigned(machine_id=machine, offer_no=offer_no)
    if kind == "start":
        return TaskStarted(machine_id=machine, offer_no=offer_no)
    if kind == "progress":
        return TaskProgressed(machine_id=machine, offer_no=offer_no, fraction=0.5)
    if kind == "complete":
        return TaskCompleted(machine_id=machine, offer_no=offer_no, grams=1.0, machine_hours=0.1)
    if kind == "fail":
        return TaskFailed(machine_id=machine, offer_no=offer_no, reason="jam")
    return TaskReleased(machine_id=machine, offer_no=offer_no)


def recount(store: Store) -> dict[str, dict[TaskState, int]]:
    """Every job's tasks counted by state, the slow way."""
    query = select(TaskRow.job_id, TaskRow.state, func.count()).group_by(
        TaskRow.job_id, TaskRow.state
    )
    found: dict[str, dict[TaskState, int]] = {}
    with store.db.read() as s:
        for job_id, state, n in s.execute(query):
            found.setdefault(job_id, {})[TaskState(state)] = n
    return found


def kept(store: Store) -> dict[str, dict[TaskState, int]]:
    return {info.spec.job_id: info.tasks_by_state for info in store.jobs.find(limit=10_000)}


def run(
    store: Store, tasks: list[str], job_id: str, step: tuple[object, ...], at: datetime
) -> None:
    """Apply one drawn step; whatever the core refuses is fine, only the counts matter."""
    kind = step[0]
    if kind == "agent":
        _, what, i, right = step
        store.apply_event(tasks[i], agent_event(store, what, tasks[i], right), at)  # type: ignore[arg-type,index]
    elif kind == "batch":
        _, items, unknown = step
        batch = [(tasks[i], agent_event(store, w, tasks[i], r)) for _, w, i, r in items]  # type: ignore[attr-defined]
        if unknown:
            batch.append(("no-such-task", TaskCancelled()))
        store.apply_events(batch, at)
    elif kind == "offer":
        store.apply_event(tasks[step[1]], TaskOffered(machine_id=str(step[2])), at)  # type: ignore[index]
    elif kind == "offer_queued":

        def match(requests: list[TaskRequest]) -> list[tuple[str, TaskOffered]]:
            return [(r.task_id, TaskOffered(machine_id=MACHINES[1])) for r in requests]

        store.offer_queued(int(step[1]), at, match)  # type: ignore[call-overload]
    elif kind == "expire":
        later = at + timedelta(seconds=int(step[1]))  # type: ignore[call-overload]
        store.expire_offers(later)
        store.expire_leases(later)
    elif kind == "offline":
        store.tasks.machine_offline(str(step[1]), at)
    elif kind == "cancel_task":
        store.apply_event(tasks[step[1]], TaskCancelled(reason="test"), at)  # type: ignore[index]
    else:
        store.jobs.cancel(job_id, at, "test")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_kept_counts_equal_a_recount(
    store: Store, fleet: Fleet, steps: list[tuple[object, ...]]
) -> None:
    if not store.catalog.list_makers():
        fleet(makers=2, per_maker=2)
    job_id = uuid.uuid4().hex
    tasks = submit(store, TASKS, job_id)
    at = NOW
    for step in steps:
        at += timedelta(seconds=10)
        run(store, tasks, job_id, step, at)
    assert kept(store) == recount(store)
    totals: dict[TaskState, int] = {state: 0 for state in TaskState}
    for by_state in recount(store).values():
        for state, n in by_state.items():
            totals[state] += n
    assert Counts(store.db).tasks_by_state() == totals


def test_counts_of_an_older_database_are_filled_in_on_start(store: Store, fleet: Fleet) -> None:
    fleet(makers=1, per_maker=1)
    tasks = submit(store, TASKS, "f" * 32)
    submit(store, 2, "0" * 32)
    store.apply_event(tasks[0], TaskOffered(machine_id="k0-m0"), NOW)
    store.apply_event(tasks[1], TaskCancelled(), NOW)
    with store.db.write() as s:  # as an older fabnet left them: no counts at all
        s.execute(update(JobRow).values({name: None for name in COLUMNS.values()}))
    again = Store(store.db.url)  # start: create_tables back-fills
    try:
        assert (
            kept(again)
            == recount(again)
            == {
                "f" * 32: {TaskState.OFFERED: 1, TaskState.CANCELLED: 1, TaskState.QUEUED: 2},
                "0" * 32: {TaskState.QUEUED: 2},
            }
        )
    finally:
        again.close()
