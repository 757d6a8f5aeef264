"""Batches in one transaction: apply_events (a SAVEPOINT per item, errors per slot) and
offer_queued (queued rows locked SKIP LOCKED, so two dispatchers never offer one task)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event, func, select
from store_jobs_support import submit

from fabnet.core.events import (
    TaskAccepted,
    TaskCompleted,
    TaskEvent,
    TaskOffered,
    TaskProgressed,
    TaskStarted,
)
from fabnet.core.machines import Machine
from fabnet.core.matching import TaskRequest
from fabnet.core.states import IgnoreReason, JobState, TaskState
from fabnet.core.tasks import Ignored, Transition
from fabnet.errors import InvalidInput, NotFound
from fabnet.store import Store
from fabnet.store.models import EventRow, LedgerRow, TaskRow

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
Fleet = Callable[..., list[Machine]]


class Commits:
    """Counts COMMITs (and ROLLBACKs) an engine sends while installed."""

    def __init__(self, engine: Engine) -> None:
        self.commits = 0
        self.rollbacks = 0
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        self._engine = engine

    def _commit(self, _conn: object) -> None:
        self.commits += 1

    def _rollback(self, _conn: object) -> None:
        self.rollbacks += 1

    def remove(self) -> None:
        event.remove(self._engine, "commit", self._commit)
        event.remove(self._engine, "rollback", self._rollback)


@pytest.fixture
def commits(store: Store) -> Iterator[Commits]:
    counter = Commits(store.db.engine)
    yield counter
    counter.remove()


def test_apply_events_commits_once_and_returns_each_items_error(
    store: Store, fleet: Fleet, commits: Commits
) -> None:
    fleet(makers=1, per_maker=2)
    a, b, c = submit(store, 3)
    offer_a = TaskOffered(machine_id="k0-m0")
    items: list[tuple[str, TaskEvent]] = [
        (a, offer_a),
        ("nope", TaskOffered(machine_id="k0-m0")),  # unknown task
        (b, TaskOffered(machine_id="no-such-machine")),  # breaks a foreign key
        (a, TaskAccepted(machine_id="k0-m0", offer_no=1)),  # sees the offer just made
        (a, offer_a),  # the same event again in the batch
        (c, TaskOffered(machine_id="k0-m1")),
    ]
    commits.commits = 0
    out = store.apply_events(items, NOW)
    assert commits.commits == 1
    assert isinstance(out[0], Transition) and out[0].to_state is TaskState.OFFERED
    assert isinstance(out[1], NotFound)
    assert isinstance(out[2], InvalidInput) and "not recorded" in str(out[2])
    assert isinstance(out[3], Transition) and out[3].to_state is TaskState.CLAIMED
    assert isinstance(out[4], Ignored) and out[4].reason is IgnoreReason.DUPLICATE
    assert isinstance(out[5], Transition)
    states = {t.task_id: t.state for t in store.tasks.find()}
    assert states == {a: TaskState.CLAIMED, b: TaskState.QUEUED, c: TaskState.OFFERED}
    info = store.jobs.get("b" * 32)
    assert info.state is JobState.IN_PROGRESS
    assert info.tasks_by_state == {
        TaskState.CLAIMED: 1,
        TaskState.QUEUED: 1,
        TaskState.OFFERED: 1,
    }
    with store.db.read() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == 3


def test_apply_events_completes_a_batch_of_lifecycles(store: Store, fleet: Fleet) -> None:
    fleet(makers=1, per_maker=1)
    tasks = submit(store, 5)
    for make in (
        lambda: TaskOffered(machine_id="k0-m0"),
        lambda: TaskAccepted(machine_id="k0-m0", offer_no=1),
        lambda: TaskStarted(machine_id="k0-m0", offer_no=1),
        lambda: TaskCompleted(machine_id="k0-m0", offer_no=1, grams=2.0, machine_hours=0.1),
    ):
        out = store.apply_events([(t, make()) for t in tasks], NOW)
        assert all(isinstance(o, Transition) for o in out), out
    assert store.jobs.get("b" * 32).state is JobState.DONE
    assert store.ledger_totals()["all"].grams == 10.0
    assert store.apply_events([], NOW) == []


def test_apply_events_rejects_a_naive_time(store: Store) -> None:
    with pytest.raises(InvalidInput, match="now"):
        store.apply_events([], datetime(2024, 5, 6, 12, 0))


def offer_all_to(
    machine_ids: list[str],
) -> Callable[[list[TaskRequest]], list[tuple[str, TaskOffered]]]:
    """A match that offers each task to the next machine, round robin."""

    def match(requests: list[TaskRequest]) -> list[tuple[str, TaskOffered]]:
        return [
            (r.task_id, TaskOffered(machine_id=machine_ids[i % len(machine_ids)]))
            for i, r in enumerate(requests)
        ]

    return match


def test_offer_queued_offers_in_queue_order_in_one_transaction(
    store: Store, fleet: Fleet, commits: Commits
) -> None:
    machines = [m.machine_id for m in fleet(makers=1, per_maker=2)]
    submit(store, 5)
    given: list[list[str]] = []

    def match(requests: list[TaskRequest]) -> Iterable[tuple[str, TaskOffered]]:
        given.append([r.task_id for r in requests])
        return offer_all_to(machines)(requests[:2])

    expected = [r.task_id for r in store.queued_tasks(3)]  # the queue's order
    commits.commits = 0
    moved = store.offer_queued(3, NOW, match)
    assert commits.commits == 1
    assert given == [expected]
    assert [t.task.task_id for t in moved] == expected[:2]
    assert [t.task.machine_id for t in moved] == machines
    assert store.jobs.get("b" * 32).tasks_by_state == {
        TaskState.OFFERED: 2,
        TaskState.QUEUED: 3,
    }
    assert store.offer_queued(0, NOW, match) == []


def test_offer_queued_refuses_a_task_it_did_not_hand_out(store: Store, fleet: Fleet) -> None:
    fleet(makers=1, per_maker=1)
    submit(store, 3)
    first, *rest = [r.task_id for r in store.queued_tasks(3)]

    def cheat(requests: list[TaskRequest]) -> list[tuple[str, TaskOffered]]:
        assert [r.task_id for r in requests] == [first]
        return [
            (first, TaskOffered(machine_id="k0-m0")),
            (rest[0], TaskOffered(machine_id="k0-m0")),
        ]

    with pytest.raises(InvalidInput, match=f"task {rest[0]}"):
        store.offer_queued(1, NOW, cheat)
    assert {t.state for t in store.tasks.find()} == {TaskState.QUEUED}  # all rolled back


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_dispatchers_offer_disjoint_tasks_at_the_same_time(store: Store, fleet: Fleet) -> None:
    """Both transactions are inside ``match`` at once (a barrier): only possible if the
    second skipped the rows the first locked instead of waiting for them."""
    machines = [m.machine_id for m in fleet(makers=2, per_maker=2)]
    tasks = submit(store, 40)
    other = Store(store.db.url, create_tables=False)
    both_inside = threading.Barrier(2)
    offered: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def dispatcher(s: Store) -> None:
        first = True

        def match(requests: list[TaskRequest]) -> list[tuple[str, TaskOffered]]:
            nonlocal first
            if first:
                first = False
                both_inside.wait(timeout=30)
            return offer_all_to(machines)(requests)

        try:
            while moved := s.offer_queued(7, NOW, match):
                with lock:
                    offered.extend(t.task.task_id for t in moved)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)
            both_inside.abort()

    threads = [threading.Thread(target=dispatcher, args=(s,)) for s in (store, other)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        other.close()
    assert not errors, errors
    assert Counter(offered) == Counter(tasks)
    with store.db.read() as s:
        per_task = s.execute(
            select(EventRow.task_id, func.count())
            .where(EventRow.kind == "task.offered", EventRow.to_state.is_not(None))
            .group_by(EventRow.task_id)
        )
        assert {t: n for t, n in per_task} == {t: 1 for t in tasks}
        states = s.execute(select(TaskRow.state, func.count()).group_by(TaskRow.state))
        assert dict(states.all()) == {"offered": 40}
        assert s.scalar(select(func.count()).select_from(LedgerRow)) == 0
    assert store.jobs.get("b" * 32).tasks_by_state == {TaskState.OFFERED: 40}


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_batches_naming_the_same_tasks_in_opposite_orders_do_not_deadlock(
    store: Store, fleet: Fleet
) -> None:
    fleet(makers=1, per_maker=1)
    tasks = submit(store, 30)
    for make in (
        lambda: TaskOffered(machine_id="k0-m0"),
        lambda: TaskAccepted(machine_id="k0-m0", offer_no=1),
    ):
        store.apply_events([(t, make()) for t in tasks], NOW)
    other = Store(store.db.url, create_tables=False)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def dispatcher(s: Store, order: list[str]) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(10):
                batch: list[tuple[str, TaskEvent]] = [
                    (t, TaskProgressed(machine_id="k0-m0", offer_no=1, fraction=0.1)) for t in order
                ]
                out = s.apply_events(batch, NOW)
                assert all(isinstance(o, Transition) for o in out), out
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [
        threading.Thread(target=dispatcher, args=(store, tasks)),
        threading.Thread(target=dispatcher, args=(other, tasks[::-1])),
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        other.close()
    assert not errors, errors
