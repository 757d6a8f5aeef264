"""Mosquitto's dynamic-security plugin as fabnet sets it up: the JSON file we write loads in the
real broker, each agent's role keeps it in its own subtree, and the hub adds, disables, enables
and removes agents at run time over $CONTROL — no file rewritten, no signal sent."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import dynsec
from fabnet.bus.broker import DYNSEC, MosquittoBroker, check_login, free_port
from fabnet.errors import DeviceError, InvalidInput, ToolMissing

USERS = {"hub": "hub-secret-1", "alice": "alice-secret-1", "bob": "bob-secret-1"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker", users=USERS, accounts=DYNSEC) as running:
        yield running


class Probe:
    """A bare paho v5 client, so the ACLs are tested without fabnet's wrapper."""

    def __init__(self, broker: MosquittoBroker, user: str, password: str | None = None) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.granted: list[bool] = []
        self.disconnected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=user,  # the plugin binds each agent to its own client id
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, password or USERS[user])
        self.client.on_message = lambda c, u, msg: self.got.append((msg.topic, msg.payload))
        self._subscribed = threading.Event()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert connected.wait(5)

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: Any, props: Any) -> None:
        self.granted.append(not rcs[0].is_failure)
        self._subscribed.set()

    def subscribe(self, topic: str) -> bool:
        """True if the broker granted the subscription."""
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(5)
        return self.granted[-1]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_config_holds_pbkdf2_hashes_and_one_role_per_agent() -> None:
    salt = bytes(range(12))
    entry = dynsec.client_entry("alice", "s3cret", ["r"], salt=salt)
    digest = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101, 64)
    assert entry["password"] == base64.b64encode(digest).decode()
    assert (entry["salt"], entry["iterations"]) == (base64.b64encode(salt).decode(), 101)
    config = dynsec.initial_config("hub", "h", {"alice": "a", "bob": "b"})
    roles = {c["username"]: [r["rolename"] for r in c["roles"]] for c in config["clients"]}
    assert roles == {
        "hub": ["fabnet-dynsec-admin", "fabnet-hub"],
        "alice": ["fabnet-agent-alice"],
        "bob": ["fabnet-agent-bob"],
    }
    assert "hub-secret" not in str(config)
    assert config["defaultACLAccess"]["publishClientSend"] is False
    with pytest.raises(InvalidInput, match="agent must be 1-64"):
        dynsec.initial_config("hub", "h", {"a/b": "x"})
    with pytest.raises(InvalidInput, match="hub's username"):
        dynsec.initial_config("hub", "h", {"hub": "x"})


def test_missing_plugin_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="apt-get install mosquitto"):
        dynsec.find_plugin([str(tmp_path)])


def test_logins_on_the_plugin(broker: MosquittoBroker) -> None:
    for user, password in USERS.items():
        assert check_login(broker.host, broker.port, user, password), user
    assert not check_login(broker.host, broker.port, "alice", USERS["bob"])
    assert not check_login(broker.host, broker.port, None, None), "anonymous must be refused"


def test_each_agent_stays_in_its_own_subtree(broker: MosquittoBroker) -> None:
    hub, alice, bob = Probe(broker, "hub"), Probe(broker, "alice"), Probe(broker, "bob")
    try:
        assert hub.subscribe("fabnet/v1/agents/#")
        assert hub.subscribe("$share/fabnet-hub/fabnet/v1/agents/+/machines/+/events")
        assert not alice.subscribe("fabnet/v1/agents/bob/commands")
        assert not alice.subscribe("fabnet/v1/agents/+/commands")
        assert not alice.subscribe("fabnet/v1/agents/bob/machines/+/events")
        assert alice.subscribe("fabnet/v1/agents/alice/commands")
        assert alice.subscribe("fabnet/v1/hub/status")
        assert bob.subscribe("fabnet/v1/agents/bob/commands")
        alice.publish("fabnet/v1/agents/bob/machines/m1/events", b"forged by alice")
        alice.publish("fabnet/v1/agents/bob/status", b"forged by alice")
        alice.publish("fabnet/v1/hub/status", b"forged by alice")
        alice.publish("fabnet/v1/agents/alice/machines/m1/events", b"alice's own event")
        hub.publish("fabnet/v1/agents/bob/commands", b"for bob only")
        hub.publish("fabnet/v1/agents/alice/commands", b"for alice")
        hub.publish("fabnet/v1/hub/status", b"hub status")
        time.sleep(0.5)  # what should not arrive has had time to
        hub_got = {p for _, p in hub.got}
        assert b"alice's own event" in hub_got and b"forged by alice" not in hub_got
        assert {p for _, p in bob.got} == {b"for bob only"}
        assert {p for _, p in alice.got} == {b"for alice", b"hub status"}
    finally:
        for probe in (hub, alice, bob):
            probe.close()


def test_hub_manages_agents_at_run_time(broker: MosquittoBroker) -> None:
    admin = broker.admin()
    admin.create_agent("carol", "carol-pw-1")
    assert check_login(broker.host, broker.port, "carol", "carol-pw-1")
    with pytest.raises(DeviceError, match="createClient for agent 'carol': Client already exists"):
        admin.create_agent("carol", "another")
    assert check_login(broker.host, broker.port, "carol", "carol-pw-1"), "password kept"
    carol = Probe(broker, "carol", "carol-pw-1")
    assert carol.subscribe("fabnet/v1/agents/carol/commands")
    assert not carol.subscribe("fabnet/v1/agents/alice/commands")
    admin.disable("carol")
    assert carol.disconnected.wait(5), "a disabled agent is disconnected"
    carol.close()
    assert not check_login(broker.host, broker.port, "carol", "carol-pw-1")
    assert (admin.get_client("carol") or {}).get("disabled") is True
    admin.enable("carol")
    assert check_login(broker.host, broker.port, "carol", "carol-pw-1")
    admin.set_password("carol", "carol-pw-2")
    assert not check_login(broker.host, broker.port, "carol", "carol-pw-1")
    assert check_login(broker.host, broker.port, "carol", "carol-pw-2")
    assert set(admin.list_clients()) == {"hub", "alice", "bob", "carol"}
    admin.delete_agent("carol")
    admin.delete_agent("carol")  # again: nothing to do, no error
    assert not check_login(broker.host, broker.port, "carol", "carol-pw-2")
    assert admin.get_client("carol") is None
    with pytest.raises(DeviceError, match="disableClient for agent 'carol'"):
        admin.disable("carol")


def test_agents_added_at_run_time_survive_a_restart(broker: MosquittoBroker) -> None:
    broker.admin().create_agent("dave", "dave-pw-1")
    broker.stop()
    broker.start()
    assert check_login(broker.host, broker.port, "dave", "dave-pw-1")


def test_admin_errors_name_the_broker_problem(broker: MosquittoBroker) -> None:
    wrong = dynsec.DynsecAdmin(broker.host, broker.port, "hub", "wrong", timeout_s=5)
    with pytest.raises(DeviceError, match="refused the admin log-in"):
        wrong.list_clients()
    agent = dynsec.DynsecAdmin(broker.host, broker.port, "alice", USERS["alice"], timeout_s=5)
    # alice is bound to her own client id, so the admin's fresh id is refused at log-in
    with pytest.raises(DeviceError, match="refused the admin log-in"):
        agent.create_agent("mallory", "x")
    nobody = dynsec.DynsecAdmin(broker.host, free_port(), "hub", "x", timeout_s=5)
    with pytest.raises(DeviceError, match="cannot connect to the broker"):
        nobody.list_clients()
