"""BusClient(manual_ack=True) against a real Mosquitto: a message handed to an acking handler
is PUBACKed only when the handler's owner says so, so one not acknowledged comes back on the
next connect of the same session, and one acknowledged never does."""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from bus_samples import MACHINE
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from test_client import running

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.client import BusClient, DeliveryTag
from fabnet.bus.topics import Topic

if TYPE_CHECKING:
    from conftest import BrokerHandle

AGENT = "carol"
Got = queue.Queue[tuple[m.Message, DeliveryTag]]


def acking_hub(handle: BrokerHandle, client_id: str, got: Got) -> BusClient:
    hub = BusClient(handle.settings("hub", client_id=client_id), manual_ack=True)

    def on_event(topic: Topic, msg: m.Message, tag: DeliveryTag) -> None:
        got.put((msg, tag))

    hub.subscribe_acked(topics.machine_events(AGENT, MACHINE), on_event)
    return hub


def drain(got: Got, timeout_s: float) -> list[tuple[m.Message, DeliveryTag]]:
    out = []
    while True:
        try:
            out.append(got.get(timeout=timeout_s))
        except queue.Empty:
            return out


def test_unacknowledged_messages_come_back_on_the_next_connect(
    mosquitto: BrokerHandle,
) -> None:
    client_id = "hub-manual-ack-1"
    sent = [m.TaskStarted(machine=MACHINE, task_id=f"t{i}", attempt=1) for i in range(3)]
    got: Got = queue.Queue()
    with running(acking_hub(mosquitto, client_id, got)) as hub:
        with running(BusClient(mosquitto.settings(AGENT))) as agent:
            for event in sent:
                assert agent.publish(topics.machine_events(AGENT, MACHINE), event).wait(5)
        first = [got.get(timeout=5) for _ in sent]
        assert [msg.id for msg, _ in first] == [e.id for e in sent]
        hub.ack(first[0][1])  # only the first is made durable before the "crash"
        assert hub.flush(5)
    again: Got = queue.Queue()
    with running(acking_hub(mosquitto, client_id, again)) as hub:
        second = drain(again, 2.0)
        assert sorted(msg.id for msg, _ in second) == sorted(e.id for e in sent[1:])
        # a tag from the earlier connection acknowledges nothing now (its packet id may name
        # another message on this one); the re-delivered copies are acked instead
        hub.ack(first[1][1])
        for _, tag in second:
            hub.ack(tag)
    third: Got = queue.Queue()
    with running(acking_hub(mosquitto, client_id, third)):
        assert drain(third, 1.0) == []


def test_a_message_no_handler_takes_is_acked_by_the_client(mosquitto: BrokerHandle) -> None:
    client_id = "hub-manual-ack-2"
    got: Got = queue.Queue()
    with running(acking_hub(mosquitto, client_id, got)):
        raw = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="carol-raw-manual-ack",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        raw.username_pw_set(AGENT, mosquitto.users[AGENT])
        raw.connect(mosquitto.host, mosquitto.port)
        raw.loop_start()
        try:
            info = raw.publish(topics.machine_events(AGENT, MACHINE), b"{not json", qos=1)
            info.wait_for_publish(5)
        finally:
            raw.disconnect()
            raw.loop_stop()
        assert drain(got, 1.0) == []
    again: Got = queue.Queue()
    with running(acking_hub(mosquitto, client_id, again)) as hub:
        assert drain(again, 1.0) == []
        assert hub.counters().received == 0
