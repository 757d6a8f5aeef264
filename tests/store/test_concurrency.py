"""Two hub threads racing on the same tasks: a completion counts once, a task is claimed once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from fabnet.core.events import TaskAccepted, TaskCompleted, TaskEvent, TaskOffered, TaskStarted
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, TaskState
from fabnet.core.tasks import Outcome, Transition
from fabnet.store import Store
from fabnet.store.models import AttemptRow, EventRow, LedgerRow

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
Fleet = Callable[..., list[Machine]]


def submit(store: Store, quantity: int) -> list[str]:
    spec = JobSpec(
        job_id="c" * 32,
        requester="req",
        design_id="ab" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=quantity,
        part_size_mm=(20.0, 20.0, 20.0),
        hours_per_part=0.1,
    )
    store.jobs.submit(spec, NOW)
    return [t.task_id for t in store.tasks.find(job_id=spec.job_id)]


def race(workers: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_same_completion_applied_concurrently_counts_once(store: Store, fleet: Fleet) -> None:
    fleet(makers=1, per_maker=1)
    tasks = submit(store, 8)
    completions: dict[str, TaskEvent] = {}
    for task_id in tasks:
        store.apply_event(task_id, TaskOffered(machine_id="k0-m0"), NOW)
        store.apply_event(task_id, TaskAccepted(machine_id="k0-m0", offer_no=1), NOW)
        store.apply_event(task_id, TaskStarted(machine_id="k0-m0", offer_no=1), NOW)
        completions[task_id] = TaskCompleted(
            machine_id="k0-m0", offer_no=1, grams=4.0, machine_hours=0.1
        )
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(2 * len(tasks))

    def deliver(task_id: str) -> Callable[[], None]:
        def work() -> None:
            barrier.wait()
            outcomes.append(store.apply_event(task_id, completions[task_id], NOW))

        return work

    race([deliver(t) for t in tasks for _ in range(2)])
    assert sum(isinstance(o, Transition) for o in outcomes) == len(tasks)
    with store.db.read() as s:
        assert s.scalar(select(func.count()).select_from(LedgerRow)) == len(tasks)
    assert store.ledger_totals()["all"].grams == 4.0 * len(tasks)


def test_concurrent_claims_give_each_task_to_one_machine(store: Store, fleet: Fleet) -> None:
    machines = [m.machine_id for m in fleet(makers=3, per_maker=2)]
    tasks = submit(store, 24)
    barrier = threading.Barrier(len(machines))
    won: Counter[str] = Counter()
    lock = threading.Lock()

    def grab(machine_id: str) -> Callable[[], None]:
        def work() -> None:
            barrier.wait()
            for task_id in tasks:
                offer = store.apply_event(task_id, TaskOffered(machine_id=machine_id), NOW)
                if not isinstance(offer, Transition):
                    continue
                accept = TaskAccepted(machine_id=machine_id, offer_no=offer.task.offer_no)
                if isinstance(store.apply_event(task_id, accept, NOW), Transition):
                    with lock:
                        won[task_id] += 1

        return work

    race([grab(m) for m in machines])
    assert won == Counter({t: 1 for t in tasks})
    assert {t.state for t in store.tasks.find()} == {TaskState.CLAIMED}
    with store.db.read() as s:
        per_task = s.execute(select(AttemptRow.task_id, func.count()).group_by(AttemptRow.task_id))
        assert {task_id: n for task_id, n in per_task} == {t: 1 for t in tasks}
        # the row lock serialises the racing offers: exactly one was applied per task
        offers = s.execute(
            select(EventRow.task_id, func.count())
            .where(EventRow.kind == "task.offered", EventRow.to_state.is_not(None))
            .group_by(EventRow.task_id)
        )
        assert {task_id: n for task_id, n in offers} == {t: 1 for t in tasks}
