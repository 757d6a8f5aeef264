"""BusClient's connection on a real Mosquitto: TCP_NODELAY on its socket, and a manually acking
client (the hub) receives more than Mosquitto's default in-flight window (20) of messages it has
not acknowledged yet, so the hub's batches are not capped at 20."""

from __future__ import annotations

import queue
import socket
from typing import TYPE_CHECKING

from bus_samples import MACHINE
from test_client import running
from test_client_manual_ack import AGENT, Got, acking_hub, drain

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.client import MANUAL_ACK_RECEIVE_MAX, BusClient

if TYPE_CHECKING:
    from conftest import BrokerHandle

MOSQUITTO_DEFAULT_INFLIGHT = 20  # max_inflight_messages when the client names no maximum


def test_the_socket_has_tcp_nodelay(mosquitto: BrokerHandle) -> None:
    with running(BusClient(mosquitto.settings(AGENT))) as agent:
        sock = agent._client.socket()  # noqa: SLF001 - the socket paho opened for us
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_manually_acking_client_gets_more_than_20_unacknowledged_messages(
    mosquitto: BrokerHandle,
) -> None:
    n = 3 * MOSQUITTO_DEFAULT_INFLIGHT
    assert n < MANUAL_ACK_RECEIVE_MAX
    sent = [m.TaskStarted(machine=MACHINE, task_id=f"t{i}", attempt=1) for i in range(n)]
    got: Got = queue.Queue()
    with running(acking_hub(mosquitto, "hub-receive-max", got)) as hub:
        with running(BusClient(mosquitto.settings(AGENT))) as agent:
            for event in sent:
                agent.publish(topics.machine_events(AGENT, MACHINE), event)
            assert agent.flush(10)
        delivered = drain(got, 2.0)  # none acknowledged yet
        assert len(delivered) == n, f"{len(delivered)} of {n} delivered before any ack"
        for _, tag in delivered:
            hub.ack(tag)
