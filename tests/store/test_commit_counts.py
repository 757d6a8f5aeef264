"""Transactions per task lifecycle (issue 9): 200 tasks offered, accepted, assigned, started
and completed by 20 machines take one transaction per tick for the offers and one per batch of
agent events, not one per event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from fabnet.core.events import (
    TaskAccepted,
    TaskAssigned,
    TaskCompleted,
    TaskEvent,
    TaskOffered,
    TaskStarted,
)
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.matching import TaskRequest
from fabnet.core.states import JobState, MachineKind, TaskState
from fabnet.core.tasks import Transition
from fabnet.store import Store

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
JOB = "a" * 32
TASKS = 200
MACHINES = 20
Fleet = Callable[..., list[Machine]]


def test_a_lifecycle_costs_a_fraction_of_a_transaction_per_task(store: Store, fleet: Fleet) -> None:
    machines = [m.machine_id for m in fleet(makers=2, per_maker=MACHINES // 2)]
    spec = JobSpec(
        job_id=JOB,
        requester="req",
        design_id="ab" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=TASKS,
        part_size_mm=(20.0, 20.0, 20.0),
        hours_per_part=0.1,
    )
    store.jobs.submit(spec, NOW)
    commits = [0]

    def count(_conn: object) -> None:
        commits[0] += 1

    def match(requests: list[TaskRequest]) -> list[tuple[str, TaskOffered]]:
        return [
            (r.task_id, TaskOffered(machine_id=m)) for r, m in zip(requests, machines, strict=False)
        ]

    steps: list[Callable[[str, int], TaskEvent]] = [
        lambda m, n: TaskAccepted(machine_id=m, offer_no=n),
        lambda m, n: TaskAssigned(machine_id=m, offer_no=n),
        lambda m, n: TaskStarted(machine_id=m, offer_no=n),
        lambda m, n: TaskCompleted(machine_id=m, offer_no=n, grams=1.0, machine_hours=0.1),
    ]
    event.listen(store.db.engine, "commit", count)
    try:
        now, ticks, done = NOW, 0, 0
        while done < TASKS:
            now += timedelta(seconds=1)
            ticks += 1
            store.expire_offers(now)
            store.expire_leases(now)
            offered = [
                (t.task.task_id, t.task.machine_id or "", t.task.offer_no)
                for t in store.offer_queued(len(machines), now, match)
            ]
            for make in steps:
                out = store.apply_events([(t, make(m, n)) for t, m, n in offered], now)
                assert all(isinstance(o, Transition) for o in out), out
            done += len(offered)
    finally:
        event.remove(store.db.engine, "commit", count)
    assert ticks == TASKS // MACHINES
    # per tick: two sweeps, the offers and four batches of agent events
    assert commits[0] == ticks * 7
    assert commits[0] / TASKS <= 0.35
    info = store.jobs.get(JOB)
    assert info.state is JobState.DONE and info.tasks_by_state == {TaskState.DONE: TASKS}


def test_one_event_alone_is_one_transaction(store: Store, fleet: Fleet) -> None:
    fleet(makers=1, per_maker=1)
    spec = JobSpec(
        job_id=JOB,
        requester="req",
        design_id="ab" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=1,
        part_size_mm=(20.0, 20.0, 20.0),
        hours_per_part=0.1,
    )
    store.jobs.submit(spec, NOW)
    task = store.tasks.find(job_id=JOB)[0].task_id
    commits = [0]

    def count(_conn: object) -> None:
        commits[0] += 1

    event.listen(store.db.engine, "commit", count)
    try:
        store.apply_event(task, TaskOffered(machine_id="k0-m0"), NOW)
        store.jobs.get(JOB)
    finally:
        event.remove(store.db.engine, "commit", count)
    assert commits[0] == 2
