"""The repository: catalog, jobs and tasks through their lifecycle, ledger, sweeps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from fabnet.core.cron import CronExpr
from fabnet.core.events import (
    TaskAccepted,
    TaskCompleted,
    TaskFailed,
    TaskOffered,
    TaskProgressed,
    TaskStarted,
)
from fabnet.core.jobs import JobSpec
from fabnet.core.ledger import LedgerKey, Totals
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import (
    AttemptCause,
    IgnoreReason,
    JobState,
    MachineKind,
    MachineState,
    TaskState,
)
from fabnet.core.tasks import Ignored, Transition
from fabnet.errors import InvalidInput, NotFound
from fabnet.store import Store
from fabnet.store.models import EventRow, LedgerRow

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
CUBE_ID = "ab" * 32  # the design the ``fleet`` fixture adds
CUBE_MM = (20.0, 20.0, 20.0)
Fleet = Callable[..., list[Machine]]


def job(quantity: int = 3, job_id: str = "j" * 32, priority: int = 0) -> JobSpec:
    return JobSpec(
        job_id=job_id,
        requester="req",
        design_id=CUBE_ID,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=quantity,
        part_size_mm=CUBE_MM,
        hours_per_part=0.5,
        priority=priority,
    )


def run_to_done(store: Store, task_id: str, machine: str, now: datetime = NOW) -> Transition:
    offer = store.apply_event(task_id, TaskOffered(machine_id=machine), now)
    assert isinstance(offer, Transition)
    n = offer.task.offer_no
    for event in (
        TaskAccepted(machine_id=machine, offer_no=n),
        TaskStarted(machine_id=machine, offer_no=n),
    ):
        assert isinstance(store.apply_event(task_id, event, now), Transition)
    done = store.apply_event(
        task_id, TaskCompleted(machine_id=machine, offer_no=n, grams=7.5, machine_hours=0.5), now
    )
    assert isinstance(done, Transition)
    return done


def test_catalog_round_trip(store: Store, fleet: Fleet) -> None:
    fleet()
    assert [m.maker_id for m in store.catalog.list_makers()] == ["k0", "k1"]
    policy = MachinePolicy(
        materials_accepted=frozenset({"PETG"}),
        max_task_hours=3.0,
        auto_accept=False,
        windows=(CronExpr.parse("* 18-23 * * 1-5"),),
        tz=ZoneInfo("Europe/Berlin"),
    )
    m = store.catalog.get_machine("k0-m0")
    store.catalog.upsert_machine(
        type(m)(**{**m.__dict__, "policy": policy, "materials": frozenset({"PLA", "PETG"})})
    )
    back = store.catalog.get_machine("k0-m0")
    assert back.policy == policy and back.materials == {"PLA", "PETG"}
    seen = store.catalog.set_machine_state("k0-m0", MachineState.BUSY, NOW)
    assert seen.state is MachineState.BUSY and seen.last_seen == NOW
    assert seen.last_seen is not None and seen.last_seen.tzinfo is not None
    assert [x.machine_id for x in store.catalog.list_machines(state=MachineState.BUSY)] == ["k0-m0"]
    assert len(store.catalog.list_machines(maker_id="k1")) == 2
    assert store.catalog.get_design(CUBE_ID).bbox_mm == CUBE_MM
    with pytest.raises(NotFound, match="machine nope"):
        store.catalog.get_machine("nope")
    with pytest.raises(InvalidInput, match="naive"):
        store.catalog.set_machine_state("k0-m0", MachineState.IDLE, datetime(2024, 1, 1))


def test_submit_creates_queued_tasks_in_match_order(store: Store, fleet: Fleet) -> None:
    fleet()
    info = store.jobs.submit(job(quantity=3), NOW)
    assert info.state is JobState.QUEUED and info.tasks_by_state == {TaskState.QUEUED: 3}
    store.jobs.submit(job(quantity=1, job_id="u" * 32, priority=9), NOW + timedelta(seconds=1))
    queued = store.queued_tasks(limit=10)
    assert len(queued) == 4 and queued[0].priority == 9
    assert queued[1].size_mm == CUBE_MM and queued[1].material == "PLA"
    with pytest.raises(NotFound, match="design"):
        store.jobs.submit(
            JobSpec(**{**job().__dict__, "job_id": "x" * 32, "design_id": "c" * 64}), NOW
        )


def test_lifecycle_writes_attempts_events_and_one_ledger_entry(store: Store, fleet: Fleet) -> None:
    fleet()
    store.jobs.submit(job(quantity=2), NOW)
    t1, t2 = (t.task_id for t in store.tasks.find(job_id="j" * 32))
    done = run_to_done(store, t1, "k0-m0")
    assert done.to_state is TaskState.DONE
    again = store.apply_event(t1, done.completed or TaskFailed(machine_id="x", offer_no=0), NOW)
    assert isinstance(again, Ignored) and again.reason is IgnoreReason.DUPLICATE
    task = store.tasks.get(t1)
    assert task.state is TaskState.DONE and task.attempts[0].cause is AttemptCause.DONE
    assert store.ledger_totals() == {"all": Totals(tasks=1, parts=1, grams=7.5, machine_hours=0.5)}
    assert store.ledger_totals(LedgerKey.MAKER) == {"k0": Totals(1, 1, 7.5, 0.5)}
    run_to_done(store, t2, "k1-m0", NOW + timedelta(hours=1))
    assert store.jobs.get("j" * 32).state is JobState.DONE
    points = store.ledger_series(NOW, NOW + timedelta(hours=2), timedelta(hours=1))
    assert [p.totals.tasks for p in points] == [1, 1]
    assert store.ledger.recent_hours_by_maker(NOW + timedelta(hours=1)) == {"k0": 0.5, "k1": 0.5}
    with store.db.read() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == 8


def test_stale_event_is_recorded_as_ignored(store: Store, fleet: Fleet) -> None:
    fleet()
    store.jobs.submit(job(quantity=1), NOW)
    (task,) = store.tasks.find()
    stale = TaskProgressed(machine_id="k0-m0", offer_no=1, fraction=0.5)
    out = store.apply_event(task.task_id, stale, NOW)
    assert isinstance(out, Ignored) and out.reason is IgnoreReason.STALE
    with store.db.read() as s:
        row = s.get(EventRow, stale.event_id)
        assert row is not None and row.ignored == "stale" and row.to_state is None
    assert store.tasks.get(task.task_id).state is TaskState.QUEUED
    with pytest.raises(NotFound):
        store.apply_event("0" * 32, stale, NOW)


def test_expire_leases_and_offers_and_machine_offline(store: Store, fleet: Fleet) -> None:
    fleet()
    store.jobs.submit(job(quantity=3), NOW)
    a, b, c = (t.task_id for t in store.tasks.find())
    store.apply_event(a, TaskOffered(machine_id="k0-m0", offer_s=10), NOW)
    store.apply_event(b, TaskOffered(machine_id="k0-m1"), NOW)
    store.apply_event(b, TaskAccepted(machine_id="k0-m1", offer_no=1, lease_s=60), NOW)
    store.apply_event(c, TaskOffered(machine_id="k1-m0"), NOW)
    store.apply_event(c, TaskAccepted(machine_id="k1-m0", offer_no=1, lease_s=600), NOW)
    assert [t.task.task_id for t in store.tasks.expire_offers(NOW + timedelta(seconds=11))] == [a]
    assert store.expire_leases(NOW + timedelta(seconds=30)) == []
    expired = store.expire_leases(NOW + timedelta(seconds=61))
    assert [t.task.task_id for t in expired] == [b]
    assert store.tasks.get(b).attempts[0].cause is AttemptCause.LEASE_EXPIRED
    offline = store.tasks.machine_offline("k1-m0", NOW + timedelta(seconds=62))
    assert [t.task.task_id for t in offline] == [c]
    assert store.catalog.get_machine("k1-m0").state is MachineState.OFFLINE
    assert {t.state for t in store.tasks.find()} == {TaskState.QUEUED}


def test_failed_machine_is_avoided_and_cancel_job(store: Store, fleet: Fleet) -> None:
    fleet()
    store.jobs.submit(job(quantity=2), NOW)
    a, _ = (t.task_id for t in store.tasks.find())
    store.apply_event(a, TaskOffered(machine_id="k0-m0"), NOW)
    store.apply_event(a, TaskAccepted(machine_id="k0-m0", offer_no=1), NOW)
    store.apply_event(a, TaskFailed(machine_id="k0-m0", offer_no=1, reason="sha256 mismatch"), NOW)
    request = next(r for r in store.queued_tasks() if r.task_id == a)
    assert request.avoid_machines == {"k0-m0"}
    cancelled = store.jobs.cancel("j" * 32, NOW, reason="no longer needed")
    assert len(cancelled) == 2
    info = store.jobs.get("j" * 32)
    assert info.state is JobState.CANCELLED
    assert [i.spec.job_id for i in store.jobs.find(requester="req")] == ["j" * 32]


def test_sqlite_pragmas_and_utc_storage(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path}/x/fabnet.db")
    try:
        with s.db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        s.catalog.add_maker("k0", NOW, maker_id="k0")
        s.catalog.upsert_machine(
            Machine("k0-m0", "k0", MachineKind.FDM, (200.0, 200.0, 200.0), 0.4, frozenset({"PLA"}))
        )
        local = datetime(2024, 5, 6, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
        s.catalog.set_machine_state("k0-m0", MachineState.IDLE, local)
        with s.db.read() as session:
            raw = session.execute(text("SELECT last_seen FROM machines WHERE id='k0-m0'")).scalar()
        assert str(raw).startswith("2024-05-06 12:00:00")
        assert s.catalog.get_machine("k0-m0").last_seen == NOW
        with s.db.read() as session:
            assert session.scalar(select(func.count()).select_from(LedgerRow)) == 0
    finally:
        s.close()


def test_default_url_is_under_var() -> None:
    from fabnet.store.database import DEFAULT_URL

    assert DEFAULT_URL == "sqlite:///var/fabnet.db"
    assert UTC is not None
