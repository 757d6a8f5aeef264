"""Client-id takeover on real Mosquitto (issue 13, item 1), with the dynamic-security plugin and
with the generated password file: agent A connecting under agent B's client id, or the hub's,
is refused or gets its own id; B and the hub stay connected, no Last Will fires."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.broker import MosquittoBroker
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.mosquitto_conf import DYNSEC, FILE
from fabnet.bus.topics import Topic

USERS = {
    "hub": "hub-secret-0123456789",
    "alice": "alice-secret-0123456789",
    "bob": "bob-secret-0123456789",
}
HUB_CLIENT_ID = "fabnet-hub-hub"


@pytest.fixture(params=[DYNSEC, FILE])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker", users=USERS, accounts=request.param) as running:
        yield running


def attempt(broker: MosquittoBroker, user: str, client_id: str) -> str:
    """Connect as ``user`` with ``client_id``; the CONNACK's reason, then disconnect."""
    answered, verdict = threading.Event(), []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, USERS[user])

    def on_connect(c: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode, p: object) -> None:
        verdict.append(str(rc))
        answered.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return verdict[0]


def settings(broker: MosquittoBroker, user: str, client_id: str) -> BusSettings:
    return BusSettings(broker.host, broker.port, user, USERS[user], client_id)


def test_an_agent_cannot_take_over_another_agents_or_the_hubs_client_id(
    broker: MosquittoBroker,
) -> None:
    inbox: queue.Queue[tuple[Topic, m.Message]] = queue.Queue()
    hub = BusClient(settings(broker, "hub", "hub" if broker.accounts == FILE else HUB_CLIENT_ID))
    for sub in topics.hub_subscriptions():
        hub.subscribe(sub.filter, lambda t, msg: inbox.put((t, msg)), sub.qos)
    will = m.AgentStatus(state=m.AgentState.OFFLINE, version="0.1.0")
    bob = BusClient(settings(broker, "bob", "bob"), will=(topics.agent_status("bob"), will))
    hub.start()
    bob.start()
    try:
        assert hub.wait_connected(10) and bob.wait_connected(10)
        online = m.AgentStatus(state=m.AgentState.ONLINE, version="0.1.0")
        bob.publish_status(topics.agent_status("bob"), online).wait(5)
        verdicts = [attempt(broker, "alice", cid) for cid in ("bob", hub.settings.client_id)]
        if broker.accounts == DYNSEC:
            assert verdicts == ["Not authorized", "Not authorized"]
        else:  # the broker renames the connection to "alice": nobody is displaced
            assert verdicts == ["Success", "Success"]
        # A message bob sends now reaches the hub after anything the takeover would have caused.
        bob.publish_status(topics.agent_status("bob"), online).wait(5)
        states = []
        while len(states) < 2 or states[-1] is not m.AgentState.ONLINE:
            _topic, msg = inbox.get(timeout=10)
            if isinstance(msg, m.AgentStatus):
                states.append(msg.state)
        assert m.AgentState.OFFLINE not in states  # bob's Last Will never fired
        assert bob.connected and hub.connected
        assert bob.counters().connects == 1 and hub.counters().connects == 1
    finally:
        bob.stop()
        hub.stop()
    log = broker.log_file.read_text()
    assert "already connected, closing old connection" not in log


def test_agents_added_at_run_time_are_bound_too(tmp_path: Path) -> None:
    users = {"hub": USERS["hub"]}
    with MosquittoBroker(tmp_path / "b", users=users, accounts=DYNSEC) as broker:
        admin = broker.admin()
        admin.create_agent("alice", USERS["alice"])
        admin.create_agent("bob", USERS["bob"])
        assert attempt(broker, "alice", "alice") == "Success"
        assert attempt(broker, "alice", "bob") == "Not authorized"
        assert attempt(broker, "alice", HUB_CLIENT_ID) == "Not authorized"
        assert (admin.get_client("alice") or {}).get("clientid") == "alice"


def test_a_client_made_before_the_binding_is_bound_by_a_new_password(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path / "b", users={"hub": USERS["hub"]}, accounts=DYNSEC) as broker:
        admin = broker.admin()
        (made,) = admin.run(
            [{"command": "createClient", "username": "alice", "password": USERS["alice"]}]
        )
        assert "error" not in made
        assert attempt(broker, "alice", "bob") == "Success"  # the hole issue 13 found
        admin.set_password("alice", USERS["alice"])
        assert attempt(broker, "alice", "bob") == "Not authorized"
        assert attempt(broker, "alice", "alice") == "Success"
