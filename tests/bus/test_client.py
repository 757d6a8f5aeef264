"""BusClient against a real Mosquitto: QoS 1 round trips, Last Will, persistent sessions,
broker crashes, hostile peers and a bounded offline queue."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
import pytest
from bus_samples import AGENT, MACHINE, TASK, every_message
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.topics import Topic
from fabnet.errors import Conflict

if TYPE_CHECKING:
    from conftest import BrokerHandle

Received = queue.Queue[tuple[Topic, m.Message]]


def collector() -> tuple[Received, Callable[[Topic, m.Message], None]]:
    inbox: Received = queue.Queue()
    return inbox, lambda topic, msg: inbox.put((topic, msg))


def next_of(
    inbox: Received, msg_type: type[m.Message], timeout_s: float = 5.0, agent: str | None = None
) -> m.Message:
    """The next message of ``msg_type`` (from ``agent`` if given; others are skipped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            topic, msg = inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {msg_type.__name__} within {timeout_s} s") from None
        if isinstance(msg, msg_type) and agent in (None, topic.agent):
            return msg


@contextmanager
def running(client: BusClient, timeout_s: float = 5.0) -> Iterator[BusClient]:
    client.start()
    try:
        assert client.wait_connected(timeout_s), client.last_error
        yield client
    finally:
        client.stop()


def offline_will(agent: str = AGENT) -> tuple[str, m.Message]:
    return topics.agent_status(agent), m.AgentStatus(state=m.AgentState.OFFLINE, version="0.1.0")


def online(agent_machines: tuple[str, ...] = (MACHINE,)) -> m.AgentStatus:
    return m.AgentStatus(state=m.AgentState.ONLINE, version="0.1.0", machines=agent_machines)


def hub_client(
    handle: BrokerHandle,
    inbox_fn: Callable[[Topic, m.Message], None],
    share: bool = False,
    **kw: object,
) -> BusClient:
    hub = BusClient(handle.settings("hub", **kw))  # type: ignore[arg-type]
    for sub in topics.hub_subscriptions(share=share):
        hub.subscribe(sub.filter, inbox_fn, sub.qos)
    return hub


def test_every_message_type_round_trips_through_the_broker(mosquitto_fresh: BrokerHandle) -> None:
    # a broker of its own: other tests' retained statuses on the shared one would arrive too
    mosquitto = mosquitto_fresh
    hub_inbox, to_hub = collector()
    agent_inbox, to_agent = collector()
    agent = BusClient(mosquitto.settings(AGENT))
    for sub in topics.agent_subscriptions(AGENT):
        agent.subscribe(sub.filter, to_agent, sub.qos)
    with running(hub_client(mosquitto, to_hub)) as hub, running(agent):
        sent = every_message()
        for topic, msg in sent:
            sender = hub if topic.endswith(("/commands", "/hub/status")) else agent
            sender.publish(topic, msg, qos=1).wait(5)
        got = []
        for inbox, n in ((hub_inbox, 9), (agent_inbox, 9)):  # hub status goes to the agent
            got += [inbox.get(timeout=5) for _ in range(n)]
        assert sorted(msg.id for _, msg in got) == sorted(msg.id for _, msg in sent)
        by_id = {msg.id: (topic, msg) for topic, msg in got}
        for topic, msg in sent:
            assert by_id[msg.id] == (topics.parse(topic), msg)
        assert hub.counters().handled == 9 and agent.counters().dropped_total == 0


CHILD = """
import sys, json, time
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus import topics, messages as m
s = BusSettings(**json.loads(sys.argv[1]))
will = (topics.agent_status(s.username), m.AgentStatus(state=m.AgentState.OFFLINE, version="0.1.0"))
bus = BusClient(s, will=will)
bus.start()
assert bus.wait_connected(10), bus.last_error
bus.publish_status(topics.agent_status(s.username),
                   m.AgentStatus(state=m.AgentState.ONLINE, version="0.1.0", machines=("mk3s-1",)))
assert bus.flush(10)
print("ready", flush=True)
time.sleep(120)
"""


def test_last_will_marks_a_killed_agent_offline_and_is_retained(
    mosquitto_fresh: BrokerHandle,
) -> None:
    mosquitto = mosquitto_fresh  # no retained status left by other tests
    inbox, to_hub = collector()
    settings = mosquitto.settings("carol")
    with running(hub_client(mosquitto, to_hub)):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(settings.__dict__)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            status = next_of(inbox, m.AgentStatus)
            assert isinstance(status, m.AgentStatus) and status.state is m.AgentState.ONLINE
            killed_at = time.monotonic()
            child.send_signal(signal.SIGKILL)
            will = next_of(inbox, m.AgentStatus, timeout_s=5)
            assert isinstance(will, m.AgentStatus) and will.state is m.AgentState.OFFLINE
            assert time.monotonic() - killed_at < 2.0
        finally:
            child.kill()
            child.wait()
    late_inbox, late = collector()  # a hub starting now learns it from the retained message
    with running(hub_client(mosquitto, late)):
        retained = [
            msg for _, msg in iter_until_quiet(late_inbox) if isinstance(msg, m.AgentStatus)
        ]
    assert [r.state for r in retained if r.id == will.id] == [m.AgentState.OFFLINE]


def iter_until_quiet(inbox: Received, quiet_s: float = 0.5) -> list[tuple[Topic, m.Message]]:
    out = []
    while True:
        try:
            out.append(inbox.get(timeout=quiet_s))
        except queue.Empty:
            return out


def test_commands_sent_while_an_agent_is_away_arrive_when_it_returns(
    mosquitto: BrokerHandle,
) -> None:
    agent_settings = mosquitto.settings("dave")  # one stable client id for both runs
    inbox, to_agent = collector()
    first = BusClient(agent_settings)
    first.subscribe(topics.agent_commands("dave"), to_agent)
    with running(first):
        pass  # subscribed in a persistent session, then gone
    sent = [m.TaskCancel(machine="m1", task_id=f"t{i}", attempt=1) for i in range(5)]
    with running(BusClient(mosquitto.settings("hub"))) as hub:
        for cmd in sent:
            assert hub.publish(topics.agent_commands("dave"), cmd).wait(5)
    assert inbox.empty()
    second = BusClient(agent_settings)
    second.subscribe(topics.agent_commands("dave"), to_agent)
    with running(second):
        got = [inbox.get(timeout=5)[1] for _ in sent]
    assert [g.id for g in got] == [c.id for c in sent]


def test_broker_crash_reconnects_republishes_status_and_delivers_queued(
    mosquitto_fresh: BrokerHandle,
) -> None:
    handle, broker = mosquitto_fresh, mosquitto_fresh.broker
    inbox, to_hub = collector()
    hub = hub_client(handle, to_hub, client_id="hub-crash")
    agent = BusClient(handle.settings(AGENT, client_id="agent-crash"), will=offline_will())
    with running(hub), running(agent):
        first_status = online()
        agent.publish_status(topics.agent_status(AGENT), first_status)
        assert next_of(inbox, m.AgentStatus).id == first_status.id
        broker.save()  # a SIGKILL loses what was not yet saved (autosave runs every ~2 s)
        broker.kill()
        deadline = time.monotonic() + 5
        while agent.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not agent.connected
        during = [
            m.TaskProgress(machine=MACHINE, task_id=TASK, attempt=1, percent=p)
            for p in (10, 20, 30)
        ]
        deliveries = [agent.publish(topics.machine_events(AGENT, MACHINE), e) for e in during]
        assert not any(d.done for d in deliveries)
        broker.start()
        restarted = time.monotonic()
        assert agent.wait_connected(20) and hub.wait_connected(20)
        reconnect_s = time.monotonic() - restarted
        assert all(d.wait(10) for d in deliveries)
        after = [msg for _, msg in iter_until_quiet(inbox)]
        assert [g.id for g in after if isinstance(g, m.TaskProgress)] == [e.id for e in during]
        statuses = [msg for msg in after if isinstance(msg, m.AgentStatus)]
        assert statuses and statuses[-1].state is m.AgentState.ONLINE
        assert statuses[-1].id != first_status.id  # re-published with a fresh id after reconnect
        assert agent.counters().connects == 2
    print(f"reconnected {reconnect_s:.2f} s after the broker restarted")


def test_hostile_payloads_are_dropped_counted_and_the_loop_goes_on(
    mosquitto_fresh: BrokerHandle,
) -> None:
    mosquitto = mosquitto_fresh  # no machine status retained by other tests
    inbox, to_hub = collector()
    events = topics.machine_events("bob", "m1")
    valid = m.TaskStarted(machine="m1", task_id=TASK, attempt=1)
    raw = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="raw-bob", protocol=MQTTProtocolVersion.MQTTv5
    )
    raw.username_pw_set("bob", mosquitto.users["bob"])
    with running(hub_client(mosquitto, to_hub)) as hub:
        raw.connect(mosquitto.host, mosquitto.port)
        raw.loop_start()
        try:
            hostile = [
                b"not json",
                b"\xff\xfe\x00",
                b"[" * 50_000,
                json.dumps({"v": 1, "type": "task.started", "machine": "m1"}).encode(),
                json.dumps({**json.loads(m.encode(valid)), "attempt": True}).encode(),
                json.dumps({**json.loads(m.encode(valid)), "type": "task.exploded"}).encode(),
                json.dumps({**json.loads(m.encode(valid)), "machine": "m2"}).encode(),
                m.encode(m.TaskCancel(machine="m1", task_id=TASK, attempt=1)),
                b"x" * (200 * 1024),
            ]
            for payload in hostile:
                raw.publish(events, payload, qos=1).wait_for_publish(5)
            raw.publish(events, m.encode(valid), qos=1).wait_for_publish(5)
            assert next_of(inbox, m.TaskStarted) == valid
            rest = [msg for _, msg in iter_until_quiet(inbox, 0.2)]
            assert not [x for x in rest if not isinstance(x, m.AgentStatus)]  # retained ones
            dropped = hub.counters().dropped
            assert dropped == {
                "not_json": 3,
                "not_utf8": 1,
                "missing_field": 1,
                "bad_field": 1,
                "unknown_type": 1,
                "machine_mismatch": 1,
                "wrong_topic": 1,
            }
            # over the broker's max_packet_size: the sender is cut off, the hub never sees it
            received = hub.counters().received
            cut_off = threading.Event()
            raw.on_disconnect = lambda client, userdata, flags, rc, props: cut_off.set()
            raw.publish(events, b"{" + b" " * (300 * 1024) + b"}", qos=1)
            assert cut_off.wait(5), "the broker accepted a packet over max_packet_size"
            time.sleep(0.2)
            assert hub.connected and hub.counters().received == received
        finally:
            raw.disconnect()
            raw.loop_stop()


def test_a_failing_handler_is_counted_and_does_not_stop_the_loop(mosquitto: BrokerHandle) -> None:
    inbox: Received = queue.Queue()

    def handler(topic: Topic, msg: m.Message) -> None:
        if isinstance(msg, m.TaskPause):
            raise RuntimeError("handler bug")
        inbox.put((topic, msg))

    agent = BusClient(mosquitto.settings(AGENT))
    agent.subscribe(topics.agent_commands(AGENT), handler)
    with running(agent), running(BusClient(mosquitto.settings("hub"))) as hub:
        hub.publish(topics.agent_commands(AGENT), m.TaskPause(machine="m", task_id="t", attempt=1))
        resume = m.TaskResume(machine="m", task_id="t", attempt=1)
        hub.publish(topics.agent_commands(AGENT), resume)
        assert inbox.get(timeout=5)[1] == resume
        assert agent.counters().handler_errors == 1 and agent.counters().handled == 1


def until_the_hub_hears(mosquitto: BrokerHandle, inbox: Received) -> None:
    """Wait until the hub's subscriptions are live: ``wait_connected`` returns at the CONNACK,
    and the SUBACK comes after it, so a message published in between would miss the hub. Bob
    sends probes until one arrives (callers skip bob's messages)."""
    probe_topic = topics.machine_events("bob", MACHINE)
    with running(BusClient(mosquitto.settings("bob"))) as probe:
        for _ in range(100):
            probe.publish(probe_topic, m.TaskAccepted(machine=MACHINE, task_id="probe", attempt=1))
            try:
                inbox.get(timeout=0.2)
                return
            except queue.Empty:
                continue
    raise AssertionError("the hub's subscriptions never became live")


def test_publish_before_connect_is_queued_bounded_and_delivered(mosquitto: BrokerHandle) -> None:
    inbox, to_hub = collector()
    agent = BusClient(mosquitto.settings(AGENT, max_queued=3))
    events = topics.machine_events(AGENT, MACHINE)
    queued = [m.TaskAccepted(machine=MACHINE, task_id=f"t{i}", attempt=1) for i in range(3)]
    deliveries = [agent.publish(events, e) for e in queued]
    with pytest.raises(Conflict, match="bus queue full"):
        agent.publish(events, m.TaskAccepted(machine=MACHINE, task_id="t3", attempt=1))
    telemetry = agent.publish(
        topics.machine_telemetry(AGENT, MACHINE), m.MachineTelemetry(machine=MACHINE), qos=0
    )
    assert not telemetry.wait(0.1)  # QoS 0 while offline is dropped, not queued
    assert agent.counters().refused == 1
    with running(hub_client(mosquitto, to_hub)):
        until_the_hub_hears(mosquitto, inbox)
        with running(agent):
            assert all(d.wait(5) for d in deliveries)
            heard = [next_of(inbox, m.TaskAccepted, agent=AGENT).id for _ in queued]
            assert heard == [e.id for e in queued]


def test_wrong_password_never_connects_and_says_why(mosquitto: BrokerHandle) -> None:
    bad = BusClient(BusSettings(mosquitto.host, mosquitto.port, AGENT, "wrong", "alice-wrong"))
    bad.start()
    try:
        assert not bad.wait_connected(1.5)
        assert bad.last_error is not None and "refused" in bad.last_error
    finally:
        bad.stop()


def test_graceful_stop_can_send_or_withhold_the_will(mosquitto: BrokerHandle) -> None:
    inbox, to_hub = collector()
    with running(hub_client(mosquitto, to_hub)):
        quiet = BusClient(mosquitto.settings("bob"), will=offline_will("bob"))
        with running(quiet):
            sent = quiet.publish_status(topics.agent_status("bob"), online())
            assert sent.wait(5)
            while next_of(inbox, m.AgentStatus, agent="bob").state is not m.AgentState.ONLINE:
                pass  # skip bob's retained status left by an earlier test
        after = [x for t, x in iter_until_quiet(inbox) if t.agent == "bob"]
        assert not after, "a plain stop must not publish the Last Will"
        leaving = BusClient(mosquitto.settings("bob"), will=offline_will("bob"))
        leaving.start()
        assert leaving.wait_connected(5)
        leaving.stop(send_will=True)
        will = next_of(inbox, m.AgentStatus, agent="bob")
        assert isinstance(will, m.AgentStatus) and will.state is m.AgentState.OFFLINE


def test_shared_subscriptions_are_renewed_after_a_broker_crash(
    mosquitto_fresh: BrokerHandle,
) -> None:
    handle, broker = mosquitto_fresh, mosquitto_fresh.broker
    inbox, to_hub = collector()
    hub = hub_client(handle, to_hub, share=True, client_id="hub-shared")
    agent = BusClient(handle.settings(AGENT, client_id="agent-shared"))
    events = topics.machine_events(AGENT, MACHINE)
    with running(hub), running(agent):
        agent.publish(events, m.TaskStarted(machine=MACHINE, task_id=TASK, attempt=1))
        next_of(inbox, m.TaskStarted)
        broker.save()
        broker.kill()
        broker.start()
        assert hub.wait_connected(20) and agent.wait_connected(20)
        deadline, arrived = time.monotonic() + 5, None
        while arrived is None and time.monotonic() < deadline:
            agent.publish(events, m.TaskStarted(machine=MACHINE, task_id=TASK, attempt=2))
            try:
                arrived = next_of(inbox, m.TaskStarted, timeout_s=0.2)
            except AssertionError:
                continue
        assert arrived is not None, "the shared subscription did not come back after the restart"
        assert hub.counters().connects == 2
