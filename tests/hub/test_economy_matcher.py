"""The budget guard in the dispatcher's offer round (issue 11), with an ``InMemoryBus``: a
budgeted job's task is not offered to an idle machine whose price for it is over the job's
cap, even when that machine is the only one idle (an unbudgeted job behind it takes it); it
is offered once a machine within budget is idle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dispatch_support import AGENT, Rig, make_rig

from fabnet.bus import messages as m
from fabnet.core.credits import Terms
from fabnet.core.machines import Machine
from fabnet.core.matching import MachineIndex, TaskRequest
from fabnet.core.states import MachineKind, MachineState
from fabnet.hub.economy import Economy
from fabnet.hub.service import JobRequest

CUBE = "cube-xyz-20mm"
DEAR, CHEAP = "m1", "m2"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(tmp_path)


def offers(rig: Rig) -> dict[str, str]:
    """Task id -> machine of every offer sent so far."""
    return {o.task_id: o.machine for o in rig.sent(m.TaskOffer) if isinstance(o, m.TaskOffer)}


def test_a_budgeted_task_waits_for_a_machine_within_its_cap(rig: Rig) -> None:
    for machine in (DEAR, CHEAP):  # known to the hub, then busy: no round offers to them yet
        rig.status(machine)
        rig.status(machine, m.MachineState.BUSY)
    now = rig.clock()
    rig.store.prices.set(f"{AGENT}/{DEAR}", 1_000_000, {}, AGENT, now)
    rig.store.prices.set(f"{AGENT}/{CHEAP}", 100, {"PLA": 1000}, AGENT, now)
    rig.store.accounts.add_user("rita", "password1", ["requester"], now)
    rig.store.credits.grant("seed", "rita", 10**9, now)
    economy = Economy(rig.service, clock=rig.clock)
    quote = {q.machine_id: q.total_mc for q in economy.quote(CUBE, 1, "PLA").quote.machines}
    assert quote[f"{AGENT}/{CHEAP}"] < quote[f"{AGENT}/{DEAR}"]
    cap = quote[f"{AGENT}/{CHEAP}"] + 1  # the cheap machine only
    budgeted, _ = economy.submit(JobRequest(CUBE, 1, "PLA", requester="rita"), cap)
    rig.clock.advance(60)
    plain = rig.submit()  # submitted later: behind the budgeted task in the queue
    (budgeted_task,) = rig.store.tasks.find(job_id=budgeted.spec.job_id)
    (plain_task,) = rig.store.tasks.find(job_id=plain)

    rig.status(DEAR)  # the dear machine idle: the round offers it the plain task only
    rig.tick()
    assert offers(rig) == {plain_task.task_id: DEAR}
    rig.status(CHEAP)
    rig.wait_sent(m.TaskOffer, 2)
    assert offers(rig) == {plain_task.task_id: DEAR, budgeted_task.task_id: CHEAP}


def test_the_matcher_prices_with_the_hubs_configured_fee(tmp_path: Path) -> None:
    """[economy] fee_percent reaches the dispatcher: a cap that fits the cheap machine at the
    default fee does not fit it at the hub's 50 %, so the budgeted task is not offered."""
    for rig in make_rig(tmp_path, economy_terms=Terms(fee_bp=5000)):
        rig.status(CHEAP)
        rig.status(CHEAP, m.MachineState.BUSY)
        now = rig.clock()
        rig.store.prices.set(f"{AGENT}/{CHEAP}", 100, {"PLA": 1000}, AGENT, now)
        rig.store.accounts.add_user("rita", "password1", ["requester"], now)
        rig.store.credits.grant("seed", "rita", 10**9, now)
        economy = Economy(rig.service, clock=rig.clock)  # quotes at the default 10 % fee
        quote = {q.machine_id: q.total_mc for q in economy.quote(CUBE, 1, "PLA").quote.machines}
        economy.submit(JobRequest(CUBE, 1, "PLA", requester="rita"), quote[f"{AGENT}/{CHEAP}"] + 1)
        rig.status(CHEAP)
        rig.tick()
        rig.clock.advance(10)
        rig.tick()
        assert offers(rig) == {}


def test_the_index_lists_the_machines_a_match_may_use() -> None:
    def printer(name: str, state: MachineState) -> Machine:
        return Machine(f"k/{name}", "k", MachineKind.FDM, (250.0, 210.0, 210.0), 0.4,
                       frozenset({"PLA"}), state=state)  # fmt: skip

    index = MachineIndex()
    for name, state in (("a", MachineState.IDLE), ("b", MachineState.IDLE),
                        ("c", MachineState.BUSY)):  # fmt: skip
        index.upsert(printer(name, state))
    assert [x.machine_id for x in index.available()] == ["k/a", "k/b"]
    request = TaskRequest("t1", MachineKind.FDM, "PLA", (20.0, 20.0, 20.0), 0.5)
    (chosen,) = index.match([request], datetime.now(UTC))
    assert [x.machine_id for x in index.available()] == sorted({"k/a", "k/b"} - {chosen.machine_id})
