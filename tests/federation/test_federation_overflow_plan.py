"""One overflow round over a real store (SQLite and PostgreSQL): an FDM-only hub whose one
printer is busy for five more hours. CNC tasks go to the peer with the most idle routers until
its cap, then to the next; a closed design stays; an FDM task whose deadline the busy printer
can still meet stays home, one it cannot meet is planned abroad; tasks in flight count."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg_support import fresh_pg_database

from fabnet.core.designs import Design
from fabnet.core.events import TaskAccepted, TaskOffered, TaskProgressed, TaskStarted
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, MachineState
from fabnet.core.tasks import Transition
from fabnet.federation.capacity import CapacityLine, CapacitySummary
from fabnet.federation.overflow_plan import plan_overflow
from fabnet.store import Store
from fabnet.store.peers import (
    Peers,
    PeerState,
    PeerTerms,
    queued_for_overflow,
    remaining_hours_by_machine,
)

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
OPEN, CLOSED = "cd" * 32, "ef" * 32
FDM, CNC = MachineKind.FDM, MachineKind.CNC


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield from _store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    else:
        for url in fresh_pg_database():
            yield from _store(url)


def _store(url: str) -> Iterator[Store]:
    s = Store(url)
    try:
        yield s
    finally:
        s.close()


def job(job_id: str, design: str, kind: MachineKind, material: str, hours: float,
        quantity: int = 1, deadline: datetime | None = None) -> JobSpec:  # fmt: skip
    return JobSpec(job_id=job_id * 32, requester="req", design_id=design, kind=kind,
                   material=material, quantity=quantity, part_size_mm=(40.0, 40.0, 10.0),
                   hours_per_part=hours, deadline=deadline)  # fmt: skip


def hub_a(store: Store) -> None:
    """One FDM printer, busy with a 10 h task half done; queued CNC and FDM work."""
    store.catalog.add_maker("maker", NOW - timedelta(days=1), maker_id="k1")
    store.catalog.upsert_machine(Machine("k1-p1", "k1", FDM, (250.0, 210.0, 210.0), 0.4,
                                         frozenset({"PLA"}), state=MachineState.BUSY))  # fmt: skip
    for design_id, license in ((OPEN, "CC-BY-4.0"), (CLOSED, "NOASSERTION")):
        design = Design(design_id=design_id, name="part", bbox_mm=(40, 40, 10), license=license)
        store.catalog.add_design(design, NOW - timedelta(days=1))
    running = store.jobs.submit(job("0", OPEN, FDM, "PLA", 10.0), NOW - timedelta(hours=6))
    task_id = store.tasks.find(job_id=running.spec.job_id)[0].task_id
    offer = store.apply_event(task_id, TaskOffered(machine_id="k1-p1"), NOW - timedelta(hours=5))
    assert isinstance(offer, Transition)
    n = offer.task.offer_no
    for event in (TaskAccepted(machine_id="k1-p1", offer_no=n),
                  TaskStarted(machine_id="k1-p1", offer_no=n),
                  TaskProgressed(machine_id="k1-p1", offer_no=n, fraction=0.5)):  # fmt: skip
        assert isinstance(store.apply_event(task_id, event, NOW - timedelta(minutes=1)), Transition)
    submit = [
        (job("1", OPEN, CNC, "MDF", 2.0, quantity=2), 5),  # two CNC tasks
        (job("2", CLOSED, CNC, "MDF", 2.0), 4),  # all rights reserved
        (job("3", OPEN, FDM, "PLA", 1.0, deadline=NOW + timedelta(hours=6, minutes=1)), 3),
        (job("4", OPEN, FDM, "PLA", 1.0, deadline=NOW + timedelta(hours=5, minutes=30)), 2),
    ]
    for spec, hours_ago in submit:
        store.jobs.submit(spec, NOW - timedelta(hours=hours_ago))


def peers(store: Store) -> Peers:
    table = Peers(store.db)
    for name, cap, charges in (("beta", 2, True), ("gamma", 5, False)):
        table.add(name, f"https://{name}.example", "k" * 43 + "=", "kid",
                  PeerTerms((), ("fdm", "cnc"), cap, charges), NOW)  # fmt: skip
        table.record_hello(name, NOW, inbound=True)
        table.record_hello(name, NOW, inbound=False)
    return table


CAPACITY = {
    "beta": CapacitySummary("beta", NOW, 3, (CapacityLine(CNC, "MDF", 2, 2, (600, 400, 90)),
                                             CapacityLine(FDM, "PLA", 1, 1, (200, 200, 200))), {}),
    "gamma": CapacitySummary("gamma", NOW, 1, (CapacityLine(CNC, "MDF", 1, 1, (800, 600, 100)),), {}),
}  # fmt: skip


def test_the_store_reads_behind_the_round(store: Store) -> None:
    hub_a(store)
    assert remaining_hours_by_machine(store.db) == {"k1-p1": pytest.approx(5.0)}
    queued = queued_for_overflow(store.db, 10)
    assert [(q.kind, q.material, q.license, q.hours) for q in queued] == [
        ("cnc", "MDF", "CC-BY-4.0", 2.0), ("cnc", "MDF", "CC-BY-4.0", 2.0),
        ("cnc", "MDF", "NOASSERTION", 2.0), ("fdm", "PLA", "CC-BY-4.0", 1.0),
        ("fdm", "PLA", "CC-BY-4.0", 1.0)]  # fmt: skip
    assert len(queued_for_overflow(store.db, 2)) == 2


def test_work_made_here_for_a_peer_never_goes_on_abroad(store: Store) -> None:
    """A foreign task (requester peer:<hub>) is made here or not at all: no hopping from hub to
    hub, no ping-pong back to its origin — even when home has no machine for it."""
    hub_a(store)
    before = {q.task_id for q in queued_for_overflow(store.db, 20)}
    foreign = replace(job("5", OPEN, CNC, "MDF", 2.0), requester="peer:alpha")
    store.jobs.submit(foreign, NOW - timedelta(hours=9))  # the oldest queued work
    assert {q.task_id for q in queued_for_overflow(store.db, 20)} == before
    planned = plan_overflow(store, peers(store).list(), CAPACITY, NOW)
    assert not {p.task_id for p in planned} - before


def test_a_task_a_peer_refused_lately_goes_to_another(store: Store) -> None:
    hub_a(store)
    table = peers(store)
    first = plan_overflow(store, table.list(), CAPACITY, NOW)[0]
    assert first.decision.peer == "beta"
    again = plan_overflow(store, table.list(), CAPACITY, NOW, avoid={first.task_id: {"beta"}})
    assert [p.decision.peer for p in again if p.task_id == first.task_id] == ["gamma"]


def test_a_round_plans_what_home_cannot_serve(store: Store) -> None:
    hub_a(store)
    table = peers(store)
    plan = plan_overflow(store, table.list(), CAPACITY, NOW)
    ids = {t.task_id: t.job_id[0] for t in store.tasks.find()}
    got = [(ids[p.task_id], p.decision.peer) for p in plan]
    assert got == [("1", "beta"), ("1", "beta"), ("2", None), ("4", None)]  # job 3 stays home
    closed, late = plan[2].decision, plan[3].decision
    assert dict(closed.refused) == {"beta": "2 tasks in flight, at its cap of 2",
                                    "gamma": "'NOASSERTION' does not allow redistribution"}  # fmt: skip
    assert late.reason.startswith("no local machine can finish it by its deadline")
    assert dict(late.refused) == {"beta": "2 tasks in flight, at its cap of 2",
                                  "gamma": "no idle fdm machine with PLA that fits the part"}  # fmt: skip
    again = plan_overflow(store, table.list(), CAPACITY, NOW, in_flight={"beta": 2})
    assert [(ids[p.task_id], p.decision.peer) for p in again] == [
        ("1", "gamma"), ("1", "gamma"), ("2", None), ("4", None)]  # fmt: skip
    table.set_state("gamma", PeerState.PAUSED, NOW)
    paused = plan_overflow(store, table.list(), CAPACITY, NOW, in_flight={"beta": 2})
    assert [p.decision.peer for p in paused] == [None] * 4
