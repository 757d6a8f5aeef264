"""A claim's lease covers the hub's own production of the G-code (``InMemoryBus``, a clock the
test moves): the maker can do nothing until ``task.assign``, so a slow slice must not expire the
claim and count as the machine's failure (three of those put it on hold)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dispatch_support import GRACE_S, LEASE_S, Rig, make_rig, wait_until

from fabnet.bus import messages as m
from fabnet.core.states import TaskState


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(tmp_path)


def test_a_claim_is_leased_for_the_hubs_production_then_a_plain_lease(rig: Rig) -> None:
    rig.tick()  # the hub hears the agents from now: leases may expire a lease from now
    rig.submit()
    rig.status("m1")
    offer = rig.wait_sent(m.TaskOffer)[0]
    assert isinstance(offer, m.TaskOffer)
    claimed_at = rig.clock.now
    rig.send(m.TaskAccepted(machine=offer.machine, task_id=offer.task_id, attempt=offer.attempt))
    hold = threading.Event()
    rig.dispatcher.submit(lambda: hold.wait(30))  # the G-code, when made, waits behind this
    try:
        task = rig.store.tasks.get(offer.task_id)
        assert task.state is TaskState.CLAIMED
        assert task.lease_until == claimed_at + timedelta(seconds=LEASE_S + GRACE_S)
    finally:
        hold.set()
    rig.clock.advance(LEASE_S + 1)  # past a plain lease from the claim: nothing expires
    rig.tick()
    rig.wait_sent(m.TaskAssign)
    wait_until(lambda: rig.store.tasks.get(offer.task_id).state is TaskState.PREPARING, "assign")
    task = rig.store.tasks.get(offer.task_id)
    assert task.attempts[-1].ended_at is None and len(task.attempts) == 1
    assert task.lease_until == rig.clock.now + timedelta(seconds=LEASE_S)  # from the assign
