"""Sweeps and reclaims with several dispatchers on one database: expire_leases and
expire_offers skip rows another transaction holds (a task expires once), and
claimed_unassigned finds claims a dead dispatcher never produced."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select
from store_jobs_support import submit

from fabnet.core.events import (
    TaskAccepted,
    TaskAssigned,
    TaskOffered,
    TaskProgressed,
)
from fabnet.core.machines import Machine
from fabnet.core.states import TaskState
from fabnet.core.tasks import Transition
from fabnet.store import Store
from fabnet.store.models import TaskRow

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)  # past every offer (30 s) and lease (60 s) made at NOW
Fleet = Callable[..., list[Machine]]
JOB = "e" * 32


def offer(store: Store, tasks: list[str], machine: str, at: datetime = NOW) -> None:
    out = store.apply_events([(t, TaskOffered(machine_id=machine)) for t in tasks], at)
    assert all(isinstance(o, Transition) for o in out), out


def claim(store: Store, tasks: list[str], machine: str, at: datetime = NOW) -> None:
    offer(store, tasks, machine, at)
    out = store.apply_events([(t, TaskAccepted(machine_id=machine, offer_no=1)) for t in tasks], at)
    assert all(isinstance(o, Transition) for o in out), out


@pytest.fixture
def other(store: Store) -> Iterator[Store]:
    """A second ``Store`` on the same database: another dispatcher process's view."""
    second = Store(store.db.url, create_tables=False)
    yield second
    second.close()


def run_with_timeout(work: Callable[[], list[Transition]]) -> list[Transition]:
    """``work()`` in a thread; fails the test if it blocks (it would wait on a row lock)."""
    result: list[list[Transition]] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the sweep waited for rows another transaction holds"
    return result[0]


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
@pytest.mark.parametrize("sweep", ["expire_leases", "expire_offers"])
def test_a_sweep_skips_rows_another_dispatcher_holds(
    store: Store, other: Store, fleet: Fleet, sweep: str
) -> None:
    fleet(makers=1, per_maker=1)
    tasks = submit(store, 10, JOB)
    if sweep == "expire_leases":
        claim(store, tasks, "k0-m0")
    else:
        offer(store, tasks, "k0-m0")
    held, free = sorted(tasks)[:5], sorted(tasks)[5:]
    holder = create_engine(store.db.url)
    try:
        with holder.connect() as conn, conn.begin():
            locked = select(TaskRow.id).where(TaskRow.id.in_(held)).with_for_update()
            assert sorted(conn.scalars(locked)) == held
            first = run_with_timeout(lambda: getattr(store, sweep)(LATER))
            assert sorted(t.task.task_id for t in first) == free
        second = getattr(other, sweep)(LATER)
        assert sorted(t.task.task_id for t in second) == held
        assert getattr(store, sweep)(LATER) == []
    finally:
        holder.dispose()
    assert {t.state for t in store.tasks.find()} == {TaskState.QUEUED}
    assert store.jobs.get(JOB).tasks_by_state == {TaskState.QUEUED: 10}


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_dispatchers_sweeping_together_expire_each_task_once(
    store: Store, other: Store, fleet: Fleet
) -> None:
    fleet(makers=1, per_maker=2)
    tasks = submit(store, 60, JOB)
    claim(store, tasks[:30], "k0-m0")
    offer(store, tasks[30:], "k0-m1")
    start = threading.Barrier(2)
    expired: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def sweeper(s: Store) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(3):
                moved = [*s.expire_offers(LATER), *s.expire_leases(LATER)]
                with lock:
                    expired.extend(t.task.task_id for t in moved)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=sweeper, args=(s,)) for s in (store, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert Counter(expired) == Counter(tasks)
    assert store.jobs.get(JOB).tasks_by_state == {TaskState.QUEUED: 60}


def test_claimed_unassigned_finds_old_claims_oldest_first(store: Store, fleet: Fleet) -> None:
    fleet(makers=1, per_maker=2)
    early, late, assigned, queued = submit(store, 4, JOB)
    claim(store, [early], "k0-m0", NOW)
    claim(store, [late], "k0-m1", NOW + timedelta(minutes=10))
    claim(store, [assigned], "k0-m0", NOW)
    moved = store.apply_event(assigned, TaskAssigned(machine_id="k0-m0", offer_no=1), NOW)
    assert isinstance(moved, Transition)
    # progress moves updated_at, not the claim's time
    progress = TaskProgressed(machine_id="k0-m0", offer_no=1, fraction=0.0)
    assert isinstance(store.apply_event(early, progress, NOW + timedelta(minutes=20)), Transition)

    found = store.tasks.claimed_unassigned(NOW + timedelta(minutes=5), 10)
    assert [t.task_id for t in found] == [early]
    assert found[0].machine_id == "k0-m0" and found[0].offer_no == 1
    assert len(found[0].attempts) == 1 and found[0].current_attempt is not None
    both = store.tasks.claimed_unassigned(NOW + timedelta(minutes=30), 10)
    assert [t.task_id for t in both] == [early, late]
    assert [t.task_id for t in store.tasks.claimed_unassigned(NOW + timedelta(hours=1), 1)] == [
        early
    ]
    assert store.tasks.claimed_unassigned(NOW - timedelta(seconds=1), 10) == []
    assert queued not in {t.task_id for t in both}
