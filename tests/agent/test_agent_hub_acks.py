"""Issue 9, exactly once: an agent keeps every event that moves a task until the hub's own
``events.ack`` names it — the broker's PUBACK is not enough — and re-sends it (same id) after a
reconnect and after a restart. Real Mosquitto, a real agent, a hub peer that acks or not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent_harness import ArtifactServer, machine_toml, new_id, offer
from agent_rig import FAST_FETCH, RigFactory, build_rig

from fabnet.agent.journal import Journal
from fabnet.agent.process import Agent
from fabnet.bus import topics
from fabnet.bus.messages import TaskAccepted, TaskCompleted


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


def test_without_the_hubs_ack_the_event_is_re_sent_after_a_reconnect(
    mosquitto_fresh: Any, tmp_path: Path, artifacts: ArtifactServer
) -> None:
    rig = build_rig(mosquitto_fresh, tmp_path, artifacts, machine_toml("m"))
    rig.hub.auto_ack = False
    try:
        task = new_id()
        rig.hub.send(offer("m", task))
        accepted = rig.hub.wait_for(TaskAccepted, task_id=task)
        wait_until(lambda: rig.agent.bus.flush(0.1), 5, "the broker acknowledged the event")
        assert accepted.id in rig.agent.journal, "a PUBACK does not clear the journal"
        broker = mosquitto_fresh.broker
        broker.save()  # the hub peer's session survives the restart
        broker.kill()
        broker.start()
        wait_until(
            lambda: len(rig.hub.messages(TaskAccepted, id=accepted.id)) >= 2, 20, "a re-send"
        )
        assert rig.agent.outbox.resent >= 1 and accepted.id in rig.agent.journal
        rig.hub.ack(accepted.id)
        wait_until(lambda: rig.agent.outbox.unconfirmed() == 0, 10, "the ack applied")
        assert rig.agent.journal.pending() == []
    finally:
        rig.agent.stop(timeout_s=2, flush_timeout_s=0.5)
        rig.hub.stop()


def test_an_ack_removes_exactly_the_events_it_names(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("a") + machine_toml("b"))
    rig.hub.auto_ack = False
    first, second = new_id(), new_id()
    rig.hub.send(offer("a", first))
    rig.hub.send(offer("b", second))
    one = rig.hub.wait_for(TaskAccepted, timeout_s=30, task_id=first)
    two = rig.hub.wait_for(TaskAccepted, timeout_s=30, task_id=second)
    wait_until(lambda: rig.agent.outbox.unconfirmed() == 2, 5, "both journaled")
    rig.hub.ack(one.id, new_id())  # an id the agent never sent is ignored
    wait_until(lambda: rig.agent.outbox.unconfirmed() == 1, 10, "the first acknowledged")
    assert [e.message.id for e in rig.agent.journal.pending()] == [two.id]
    assert [e.message.id for e in Journal(rig.agent.journal.path).pending()] == [two.id]
    rig.hub.ack(two.id)
    wait_until(lambda: rig.agent.outbox.unconfirmed() == 0, 10, "the second acknowledged")
    assert rig.agent.outbox.flush(1.0)
    rig.hub.auto_ack = True  # the hand-backs at the stop


def test_a_restarted_agent_re_sends_what_the_hub_did_not_ack(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("m"))
    rig.hub.auto_ack = False
    task = new_id()
    rig.hub.send(offer("m", task))
    accepted = rig.hub.wait_for(TaskAccepted, task_id=task)
    rig.agent.stop(timeout_s=2, flush_timeout_s=0.5)  # flush gives up: no ack comes
    pending = Journal(rig.agent.journal.path).pending()
    assert accepted.id in {e.message.id for e in pending}, "kept on disk for the next start"
    restarted = Agent(rig.config, fetch=FAST_FETCH)
    restarted.start()
    try:
        again = rig.hub.wait_for(
            TaskAccepted, timeout_s=15, id=accepted.id, where=lambda m: m is not accepted
        )
        assert again == accepted  # the same message: same id, same time stamp
        ids = [e.message.id for e in restarted.journal.pending()]
        rig.hub.ack(*ids)
        wait_until(lambda: restarted.outbox.unconfirmed() == 0, 10, "acknowledged")
    finally:
        restarted.stop(timeout_s=2)
    assert Journal(rig.agent.journal.path).pending() == []


def test_a_full_journal_gives_up_its_oldest_event(tmp_path: Path) -> None:
    topic = topics.machine_events("alice", "m")
    journal = Journal(tmp_path / "j.jsonl", max_events=3)
    events = [
        TaskCompleted(
            machine="m", task_id=new_id(), attempt=1, grams=1.0, machine_s=2.0, sha256="ab" * 32
        )  # fmt: skip
        for _ in range(5)
    ]
    for event in events:
        journal.record(topic, event)
    kept = [e.message for e in journal.pending()]
    assert kept == events[2:] and journal.given_up == 2
    assert [e.message for e in Journal(tmp_path / "j.jsonl", max_events=3).pending()] == kept
    assert [e.message for e in Journal(tmp_path / "j.jsonl", max_events=1).pending()] == kept[2:]


def test_confirmed_lines_are_compacted_away(tmp_path: Path) -> None:
    topic = topics.machine_events("alice", "m")
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    keep = TaskCompleted(machine="m", task_id=new_id(), attempt=1, grams=1, machine_s=2,
                         sha256="cd" * 32)  # fmt: skip
    journal.record(topic, keep)
    for _ in range(600):
        done = TaskAccepted(machine="m", task_id=new_id(), attempt=1)
        journal.record(topic, done)
        assert journal.confirm(done.id)
    assert not journal.confirm(done.id)
    assert len(path.read_text().splitlines()) < 2 * 256 + 10, "the file was rewritten"
    assert [e.message for e in Journal(path).pending()] == [keep]
