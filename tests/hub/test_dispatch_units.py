"""The dispatcher's parts without a broker: an ``InMemoryBus`` records what it sends, the store
is SQLite in tmp, and the test moves the clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dispatch_support import AGENT, GRACE_S, LEASE_S, OFFER_S, Rig, make_rig, wait_until
from sqlalchemy import event

from fabnet.bus import messages as m
from fabnet.bus.topics import Topic, TopicKind
from fabnet.core import events as ev
from fabnet.core.states import TaskState
from fabnet.errors import Conflict
from fabnet.hub.dispatch.hearing import HearingGate
from fabnet.hub.service import JobRequest


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(tmp_path)


def offer_of(rig: Rig, n: int = 1) -> m.TaskOffer:
    offer = rig.wait_sent(m.TaskOffer, n)[n - 1]
    assert isinstance(offer, m.TaskOffer)
    return offer


def ids(offer: m.TaskOffer) -> dict[str, Any]:
    return {"machine": offer.machine, "task_id": offer.task_id, "attempt": offer.attempt}


def queued_queries(rig: Rig) -> list[tuple[str, Any]]:
    """Every statement that reads the queue (ordered by priority), with its parameters."""
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if "ORDER BY tasks.priority DESC" in statement:
            seen.append((statement, params))

    event.listen(rig.store.db.engine, "before_cursor_execute", before)
    return seen


def test_a_task_is_offered_as_soon_as_a_machine_becomes_idle(rig: Rig) -> None:
    rig.submit()
    rig.status("m1")  # no tick: the idle machine itself starts an offer round
    offer = offer_of(rig)
    assert offer.machine == "m1" and offer.attempt == 1
    assert rig.store.tasks.get(offer.task_id).state is TaskState.OFFERED


def test_no_queue_query_without_an_idle_machine_and_one_task_per_idle_machine(rig: Rig) -> None:
    rig.submit(quantity=5)
    seen = queued_queries(rig)
    rig.tick()
    rig.tick()
    assert seen == []  # nobody idle: the queue is not read at all
    rig.status("m1")
    offer_of(rig)
    assert len(seen) == 1
    statement, params = seen[0]
    assert "LIMIT ?" in statement and 1 in params[-2:], (statement, params)  # one idle machine
    assert len(rig.store.tasks.find(state=TaskState.QUEUED)) == 4


def test_a_lifecycle_is_applied_acked_after_commit_and_acknowledged_to_the_agent(
    rig: Rig,
) -> None:
    rig.submit()
    rig.status("m1")
    offer = offer_of(rig)
    accepted = m.TaskAccepted(**ids(offer))
    tag = rig.send(accepted)
    assert tag in rig.bus.acked
    assign = rig.wait_sent(m.TaskAssign)[0]
    assert isinstance(assign, m.TaskAssign)
    started = m.TaskStarted(**ids(offer))
    record = rig.artifacts.assignment(offer.task_id, offer.attempt)
    assert record is not None and record.grams and record.time_s
    done = m.TaskCompleted(
        **ids(offer), grams=record.grams, machine_s=record.time_s, sha256=assign.sha256
    )
    progress = m.TaskProgress(**ids(offer), percent=50.0)
    for message in (started, progress, done, done):  # the completion twice: a re-send
        rig.dispatcher.on_message(rig_topic(offer.machine), message, None)
    rig.settle()
    task = rig.store.tasks.get(offer.task_id)
    assert task.state is TaskState.DONE
    assert len(list(rig.store.ledger.entries())) == 1
    acked = [i for a in rig.sent(m.EventsAck) if isinstance(a, m.EventsAck) for i in a.ids]
    # moving events only, each once per ack; the re-sent completion is acknowledged again
    assert accepted.id in acked and started.id in acked and done.id in acked
    assert progress.id not in acked


def rig_topic(machine: str) -> Topic:
    return Topic(TopicKind.EVENTS, AGENT, machine)


def test_an_event_refused_for_good_is_acked_and_acknowledged(rig: Rig) -> None:
    lost = m.TaskStarted(machine="m1", task_id="nosuchtask", attempt=1)
    tag = rig.send(lost)
    assert tag in rig.bus.acked
    assert rig.dispatcher.drops.counts()["NotFound"] == 1
    (ack,) = rig.sent(m.EventsAck)
    assert isinstance(ack, m.EventsAck) and ack.ids == (lost.id,)


def test_no_lease_expires_while_deaf_nor_within_a_lease_of_hearing_again(rig: Rig) -> None:
    rig.submit()
    rig.tick()  # heard since now
    rig.status("m1")
    offer = offer_of(rig)
    rig.send(m.TaskAccepted(**ids(offer)))
    rig.wait_sent(m.TaskAssign)
    rig.send(m.TaskStarted(**ids(offer)))
    rig.bus.set_connected(False)
    rig.clock.advance(LEASE_S * 3)
    rig.tick()
    assert rig.store.tasks.get(offer.task_id).state is TaskState.RUNNING
    rig.bus.set_connected(True)
    rig.tick()
    rig.clock.advance(LEASE_S - 1)
    rig.tick()
    assert rig.store.tasks.get(offer.task_id).state is TaskState.RUNNING
    rig.clock.advance(1)
    rig.tick()
    task = rig.store.tasks.get(offer.task_id)  # requeued, and maybe offered again already
    assert task.state in (TaskState.QUEUED, TaskState.OFFERED)
    assert task.attempts[-1].ended_at is not None
    cancels = [
        c
        for c in rig.sent(m.TaskCancel)
        if isinstance(c, m.TaskCancel) and c.task_id == offer.task_id
    ]
    assert cancels and cancels[-1].attempt == offer.attempt


def test_hearing_gate_counts_a_reconnect_between_two_looks() -> None:
    gate = HearingGate(lease_s=10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert not gate.leases_may_expire(t0)
    gate.observe(True, 1, t0)
    assert not gate.leases_may_expire(t0 + timedelta(seconds=9))
    assert gate.leases_may_expire(t0 + timedelta(seconds=10))
    gate.observe(True, 2, t0 + timedelta(seconds=20))  # lost and regained since the last look
    assert not gate.leases_may_expire(t0 + timedelta(seconds=29))
    assert gate.leases_may_expire(t0 + timedelta(seconds=30))
    gate.observe(False, 2, t0 + timedelta(seconds=31))
    assert not gate.leases_may_expire(t0 + timedelta(days=1))


def test_a_lapsed_offer_is_cancelled_at_its_holder_known_from_the_store(rig: Rig) -> None:
    rig.submit()
    rig.tick()
    rig.status("m1")
    offer = offer_of(rig)
    rig.clock.advance(OFFER_S + 1)
    rig.tick()
    (cancel,) = rig.sent(m.TaskCancel)
    assert isinstance(cancel, m.TaskCancel)
    assert (cancel.machine, cancel.task_id, cancel.attempt) == ("m1", offer.task_id, 1)
    again = offer_of(rig, 2)  # the machine is free again and gets the next offer
    assert again.task_id == offer.task_id and again.attempt == 2


def test_a_claim_nobody_produces_is_produced_after_the_grace_period(rig: Rig) -> None:
    rig.status("m1")
    job_id = rig.submit()
    (task,) = rig.store.tasks.find(job_id=job_id)
    # offered and accepted by another process (an API process, or a dispatcher that died)
    rig.store.apply_event(task.task_id, ev.TaskOffered(machine_id=f"{AGENT}/m1", offer_s=60),
                          rig.clock.now)  # fmt: skip
    rig.store.apply_event(task.task_id, ev.TaskAccepted(machine_id=f"{AGENT}/m1", offer_no=1,
                          lease_s=LEASE_S * 10), rig.clock.now)  # fmt: skip
    rig.tick()
    assert rig.sent(m.TaskAssign) == []
    rig.clock.advance(GRACE_S + 1)
    rig.tick()
    (assign,) = rig.wait_sent(m.TaskAssign)
    assert isinstance(assign, m.TaskAssign) and assign.task_id == task.task_id
    wait_until(lambda: rig.store.tasks.get(task.task_id).state is TaskState.PREPARING, "assigned")


def test_answer_offer_applies_a_decision_once(rig: Rig) -> None:
    rig.submit()
    rig.status("m1")
    offer = offer_of(rig)
    rig.dispatcher.answer_offer(AGENT, "m1", offer.task_id, offer.attempt, accept=True)
    assert rig.store.tasks.get(offer.task_id).state in (TaskState.CLAIMED, TaskState.PREPARING)
    rig.wait_sent(m.TaskAssign)
    with pytest.raises(Conflict, match="not open"):
        rig.dispatcher.answer_offer(AGENT, "m1", offer.task_id, offer.attempt, accept=False)
    assert rig.sent(m.EventsAck) == []  # the hub's own decisions are journaled by no agent


def test_a_decline_requeues_and_the_task_is_offered_again(rig: Rig) -> None:
    rig.submit()
    rig.status("m1")
    offer = offer_of(rig)
    rig.dispatcher.answer_offer(AGENT, "m1", offer.task_id, offer.attempt, False, "no filament")
    rig.status("m2")
    again = offer_of(rig, 2)
    assert again.task_id == offer.task_id and again.attempt == 2


def test_tasks_no_idle_machine_can_take_do_not_hide_those_behind_them(rig: Rig) -> None:
    abs_job = JobRequest(design="cube-xyz-20mm", quantity=5, material="ABS", priority=5)
    rig.service.submit(abs_job)  # first in the queue, and the PLA machine cannot take them
    pla_job = rig.submit()
    rig.status("m1")
    for _ in range(4):  # each round looks twice as far as the last one that came up short
        rig.tick()
    offer = offer_of(rig)
    (pla_task,) = rig.store.tasks.find(job_id=pla_job)
    assert offer.task_id == pla_task.task_id
