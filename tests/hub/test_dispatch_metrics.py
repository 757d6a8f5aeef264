"""The dispatcher's metrics with an ``InMemoryBus`` and a clock the test moves: offer->done is
measured from the offer (the store's ``offered`` event), not from the claim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dispatch_support import Rig, make_rig

from fabnet.bus import messages as m
from fabnet.core.states import TaskState
from fabnet.hub.metrics import HubMetrics

HISTOGRAM = "fabnet_offer_to_done_seconds"


@pytest.fixture
def metrics() -> HubMetrics:
    return HubMetrics()


@pytest.fixture
def rig(tmp_path: Path, metrics: HubMetrics) -> Iterator[Rig]:
    yield from make_rig(tmp_path, metrics=metrics)


def observed(metrics: HubMetrics) -> tuple[float, float]:
    """(count, sum) of the offer->done histogram."""
    count = metrics.registry.get_sample_value(f"{HISTOGRAM}_count")
    total = metrics.registry.get_sample_value(f"{HISTOGRAM}_sum")
    return count or 0.0, total or 0.0


def test_offer_to_done_counts_from_the_offer_not_the_claim(rig: Rig, metrics: HubMetrics) -> None:
    rig.submit()
    rig.status("m1")  # offered now
    offer = rig.wait_sent(m.TaskOffer)[0]
    assert isinstance(offer, m.TaskOffer)
    ids = {"machine": offer.machine, "task_id": offer.task_id, "attempt": offer.attempt}
    rig.clock.advance(30)  # the maker thinks it over
    rig.send(m.TaskAccepted(**ids))  # the claim: the attempt starts here
    assign = rig.wait_sent(m.TaskAssign)[0]
    assert isinstance(assign, m.TaskAssign)
    rig.clock.advance(5)
    rig.send(m.TaskStarted(**ids))
    rig.clock.advance(7)
    record = rig.artifacts.assignment(offer.task_id, offer.attempt)
    assert record is not None
    done = m.TaskCompleted(**ids, grams=record.grams, machine_s=record.time_s, sha256=assign.sha256)
    rig.send(done)
    assert rig.store.tasks.get(offer.task_id).state is TaskState.DONE
    assert observed(metrics) == (1.0, pytest.approx(42.0))  # 30 + 5 + 7; from the claim: 12
    rig.send(done)  # a re-sent completion is a duplicate: not observed again
    assert observed(metrics) == (1.0, pytest.approx(42.0))
