"""Failure causes on attempts and machines on hold (issue 10, item 4), on SQLite and
PostgreSQL; and the columns added to a database an older fabnet created."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import NOW, AddFleet
from sqlalchemy import text
from test_store import job

from fabnet.core.events import TaskAccepted, TaskFailed, TaskOffered, TaskReleased, TaskStarted
from fabnet.core.states import FailureCause, TaskState
from fabnet.core.tasks import Transition
from fabnet.errors import Conflict
from fabnet.store import Store
from fabnet.store.counts import Counts
from fabnet.store.upgrade import ADDED_COLUMNS

M = "k0-m0"


def _run(store: Store, task_id: str, at: int) -> int:
    """Offer, accept and start ``task_id`` on M at NOW + ``at`` s; returns the offer number."""
    now = NOW + timedelta(seconds=at)
    offer = store.apply_event(task_id, TaskOffered(machine_id=M), now)
    assert isinstance(offer, Transition)
    n = offer.task.offer_no
    for event in (TaskAccepted(machine_id=M, offer_no=n), TaskStarted(machine_id=M, offer_no=n)):
        assert isinstance(store.apply_event(task_id, event, now), Transition)
    return n


def _fail(store: Store, task_id: str, at: int, cause: FailureCause | None) -> None:
    n = _run(store, task_id, at)
    event = TaskFailed(machine_id=M, offer_no=n, reason="broke", cause=cause)
    assert isinstance(
        store.apply_event(task_id, event, NOW + timedelta(seconds=at + 1)), Transition
    )


def test_each_attempt_keeps_its_failure_cause(store: Store, fleet: AddFleet) -> None:
    fleet()
    store.jobs.submit(job(quantity=1), NOW)
    (task,) = store.tasks.find(job_id="j" * 32)
    _fail(store, task.task_id, 0, FailureCause.THERMAL_FAULT)
    _fail(store, task.task_id, 10, None)  # an older agent: no cause
    n = _run(store, task.task_id, 20)
    store.apply_event(task.task_id, TaskReleased(machine_id=M, offer_no=n), NOW)
    _run(store, task.task_id, 30)
    store.jobs.cancel("j" * 32, NOW + timedelta(seconds=40))
    causes = [a.failure for a in store.tasks.get(task.task_id).attempts]
    assert causes == [
        FailureCause.THERMAL_FAULT,
        FailureCause.UNKNOWN,
        FailureCause.RELEASED,
        FailureCause.CANCELLED_BY_HUB,
    ]


def test_failures_in_a_row_count_until_a_release_of_the_hold(store: Store, fleet: AddFleet) -> None:
    fleet()
    store.jobs.submit(job(quantity=3), NOW)
    tasks = [t.task_id for t in store.tasks.find(job_id="j" * 32)]
    _fail(store, tasks[0], 0, FailureCause.FIRMWARE_FAULT)
    _fail(store, tasks[1], 10, FailureCause.CANCELLED_BY_MAKER)  # not the machine's fault
    _fail(store, tasks[2], 20, FailureCause.LINK_LOST)
    assert store.holds.consecutive_failures(M) == 2
    assert store.holds.last_failures([M, "k0-m1"]) == {M: FailureCause.LINK_LOST}
    counts = Counts(store.db)
    assert counts.failures() == {
        (FailureCause.FIRMWARE_FAULT, M): 1,
        (FailureCause.CANCELLED_BY_MAKER, M): 1,
        (FailureCause.LINK_LOST, M): 1,
    }
    assert counts.tasks_by_state()[TaskState.QUEUED] == 3
    assert store.holds.hold(M, "2 failures in a row", NOW + timedelta(seconds=30))
    assert not store.holds.hold(M, "again", NOW + timedelta(seconds=31))
    assert store.catalog.get_machine(M).held
    assert set(store.holds.held()) == {M}
    store.holds.release(M, NOW + timedelta(seconds=40))
    assert not store.catalog.get_machine(M).held and store.holds.get(M) is None
    assert store.holds.consecutive_failures(M) == 0  # counted afresh after a release
    with pytest.raises(Conflict, match="not on hold"):
        store.holds.release(M, NOW + timedelta(seconds=41))


def test_an_older_database_gets_the_new_columns(store: Store) -> None:
    with store.db.engine.begin() as conn:
        for table, column in ADDED_COLUMNS:
            conn.execute(text(f'ALTER TABLE {table} DROP COLUMN "{column}"'))
    again = Store(store.db.url)
    try:
        assert again.holds.held() == {}
        assert again.tasks.find() == []
    finally:
        again.close()
    with store.db.engine.begin() as conn:
        cols = conn.execute(text("SELECT held_at, hold_reason, hold_cleared_at FROM machines"))
        assert cols.fetchall() == []
