"""Two dispatchers on one store, each with its own view of the machines (shared subscriptions
split the agents' messages between them): one does not offer a machine the other gave work,
and takes the machine back once the store shows it free (``InMemoryBus``, a moved clock)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dispatch_support import AGENT, LEASE_S, OFFER_S, Rig, make_rig

from fabnet.bus import messages as m
from fabnet.core import events as ev
from fabnet.core.states import TaskState
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatch import Dispatcher, InMemoryBus
from fabnet.hub.dispatch.offering import RECHECK_EVERY


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(tmp_path)


def settle(dispatcher: Dispatcher) -> None:
    done = threading.Event()
    dispatcher.submit(done.set)
    assert done.wait(30)


def test_a_machine_busy_for_another_dispatcher_is_not_offered_until_free(
    rig: Rig, tmp_path: Path
) -> None:
    rig.tick()
    rig.submit()
    rig.status("m1")
    offer = rig.wait_sent(m.TaskOffer)[0]  # dispatcher A offered m1 the first task
    assert isinstance(offer, m.TaskOffer)
    bus = InMemoryBus()
    artifacts = ArtifactStore(tmp_path / "b" / "artifacts")
    other = Dispatcher(rig.store, bus, DesignCatalog.for_hub(rig.store, tmp_path / "b"),
                       artifacts, "http://hub.test", lease_s=LEASE_S, offer_timeout_s=OFFER_S,
                       clock=rig.clock)  # fmt: skip
    other.start()  # sees m1 idle in the store: it did not hear of A's offer
    try:
        second_job = rig.submit()
        other.tick()
        settle(other)
        assert bus.sent(m.TaskOffer) == []
        (second,) = rig.store.tasks.find(job_id=second_job)
        assert second.state is TaskState.QUEUED
        # A stops; the offer is declined (its answer reached neither dispatcher's view of m1)
        rig.dispatcher.stop()
        declined = ev.TaskDeclined(machine_id=f"{AGENT}/m1", offer_no=offer.attempt)
        rig.store.apply_event(offer.task_id, declined, rig.clock.now)
        rig.clock.advance(RECHECK_EVERY.total_seconds() + 1)
        other.tick()
        settle(other)
        (again,) = bus.sent(m.TaskOffer)
        assert isinstance(again, m.TaskOffer) and again.machine == "m1"
        assert again.task_id in {offer.task_id, second.task_id}
        assert len(rig.store.tasks.find(state=TaskState.OFFERED)) == 1  # m1 holds one offer
    finally:
        other.stop()
        artifacts.close()
