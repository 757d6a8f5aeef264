"""Mosquitto as fabnet runs it: our password hashes, the ACL and the config, on the real broker."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import broker as b
from fabnet.bus.broker import check_login
from fabnet.bus.cli import broker_config_command
from fabnet.errors import ConfigError, InvalidInput, ToolFailed, ToolMissing

if TYPE_CHECKING:
    from conftest import BrokerHandle


def test_password_hash_is_mosquittos_pbkdf2_format() -> None:
    salt = bytes(range(12))
    line = b.password_hash("s3cret", salt=salt)
    _, seven, iterations, salt_b64, hash_b64 = line.split("$")
    assert (seven, iterations) == ("7", "101")
    assert base64.b64decode(salt_b64) == salt
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101, 64)
    assert base64.b64decode(hash_b64) == expected
    assert b.password_hash("s3cret") != b.password_hash("s3cret")  # fresh salt each time


def test_our_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd missing: apt-get install mosquitto"
    pw = tmp_path / "ref"
    subprocess.run([tool, "-c", "-b", str(pw), "eve", "pa:ss wörd"], check=True)
    _, rest = pw.read_text().strip().split(":", 1)
    salt = base64.b64decode(rest.split("$")[3])
    assert b.password_hash("pa:ss wörd", salt=salt) == rest


def test_password_file_rejects_bad_names_and_empty_passwords(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="broker username"):
        b.write_password_file(tmp_path / "p", {"a/b": "x"})
    with pytest.raises(InvalidInput, match="password of 'alice'"):
        b.write_password_file(tmp_path / "p", {"alice": ""})
    path = b.write_password_file(tmp_path / "p", {"bob": "1", "alice": "2"})
    assert [line.split(":")[0] for line in path.read_text().splitlines()] == ["alice", "bob"]
    assert path.stat().st_mode & 0o077 == 0


def test_acl_is_the_design_pattern_acl() -> None:
    text = b.acl_text("hub")
    assert "pattern write fabnet/v1/agents/%u/#\n" in text
    assert "pattern read fabnet/v1/agents/%u/commands\n" in text
    assert "pattern read fabnet/v1/hub/status\n" in text
    assert text.endswith("user hub\ntopic readwrite fabnet/v1/#\n")


def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="apt-get install mosquitto"):
        b.find_mosquitto(search_path=str(tmp_path))


def test_broker_needs_its_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="passwd is missing"):
        b.MosquittoBroker(tmp_path)


def test_good_passwords_connect_and_others_do_not(mosquitto: BrokerHandle) -> None:
    host, port = mosquitto.host, mosquitto.port
    for user, password in mosquitto.users.items():
        assert check_login(host, port, user, password), user
    assert not check_login(host, port, "alice", "wrong")
    assert not check_login(host, port, "alice", mosquitto.users["bob"])
    assert not check_login(host, port, "mallory", "anything")
    assert not check_login(host, port, None, None), "anonymous access must be refused"


class Raw:
    """A bare paho v5 client for ACL probing (so the ACL is tested without our wrapper)."""

    def __init__(self, handle: BrokerHandle, user: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"raw-{user}-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, handle.users[user])
        self.client.on_message = lambda c, u, msg: self.got.append((msg.topic, msg.payload))
        self.subscribed = threading.Event()
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(handle.host, handle.port)
        self.client.loop_start()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: Any, props: Any) -> None:
        self.subscribed.set()

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_acl_keeps_each_agent_in_its_own_subtree(mosquitto: BrokerHandle) -> None:
    hub, alice, bob = Raw(mosquitto, "hub"), Raw(mosquitto, "alice"), Raw(mosquitto, "bob")
    try:
        hub.subscribe("fabnet/v1/agents/#")
        alice.subscribe("fabnet/v1/agents/bob/commands")  # refused or silently empty
        alice.subscribe("fabnet/v1/agents/bob/machines/+/events")
        alice.subscribe("fabnet/v1/agents/alice/commands")
        bob.subscribe("fabnet/v1/agents/bob/commands")
        alice.publish("fabnet/v1/agents/bob/machines/m1/events", b"forged by alice")
        alice.publish("fabnet/v1/agents/bob/status", b"forged by alice")
        alice.publish("fabnet/v1/agents/alice/commands", b"alice commanding herself")
        alice.publish("fabnet/v1/agents/alice/machines/m1/events", b"alice's own event")
        bob.publish("fabnet/v1/agents/bob/machines/m1/events", b"bob's own event")
        hub.publish("fabnet/v1/agents/bob/commands", b"for bob only")
        hub.publish("fabnet/v1/agents/alice/commands", b"for alice")
        time.sleep(0.5)
        hub_got = {p for _, p in hub.got}
        assert b"alice's own event" in hub_got and b"bob's own event" in hub_got
        assert b"forged by alice" not in hub_got
        assert b"for bob only" in {p for _, p in bob.got}
        assert {p for _, p in alice.got} == {b"for alice", b"alice commanding herself"}
    finally:
        for client in (hub, alice, bob):
            client.close()


def test_cli_writes_files_the_broker_runs_with(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        broker_config_command,
        ["--out", str(out), "--hub-user", "hub", "--hub-password", "hubpw",
         "--agent", "alice:apw", "--agent", "bob:b:pw", "--port", "1884"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"passwd", "acl", "mosquitto.conf"}
    assert "listener 1884 127.0.0.1" in (out / "mosquitto.conf").read_text()
    assert "3 users" in result.output
    with b.MosquittoBroker(out) as broker:  # uses the CLI's passwd and acl
        assert check_login(broker.host, broker.port, "bob", "b:pw")
        assert check_login(broker.host, broker.port, "hub", "hubpw")
        assert not check_login(broker.host, broker.port, "alice", "b:pw")


def test_cli_rejects_malformed_agents(tmp_path: Path) -> None:
    for bad in ("alice", "a/b:pw", ":pw", "alice:"):
        result = CliRunner().invoke(
            broker_config_command,
            ["--out", str(tmp_path), "--hub-password", "x", "--agent", bad],
        )
        assert result.exit_code != 0, bad


def test_restart_keeps_port_and_retained_messages(mosquitto_fresh: BrokerHandle) -> None:
    broker = mosquitto_fresh.broker
    port = broker.port
    hub = Raw(mosquitto_fresh, "hub")
    hub.client.publish("fabnet/v1/hub/status", b"kept", qos=1, retain=True).wait_for_publish(5)
    hub.close()
    broker.stop()  # SIGTERM saves the database
    assert not broker.running
    broker.start()
    assert broker.port == port and broker.running
    alice = Raw(mosquitto_fresh, "alice")
    try:
        alice.subscribe("fabnet/v1/hub/status")
        deadline = time.monotonic() + 5
        while not alice.got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alice.got == [("fabnet/v1/hub/status", b"kept")]
    finally:
        alice.close()


def test_start_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = b.MosquittoBroker(tmp_path, port=port, users={"hub": "x"})
        with pytest.raises(
            ToolFailed, match=f"mosquitto exited at start \\(port {port}\\)"
        ) as info:
            broker.start()
    assert "Address already in use" in info.value.output
    assert not broker.running
