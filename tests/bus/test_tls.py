"""MQTT over TLS: a real Mosquitto with the TLS listener fabnet generates; BusClient verifies the
broker's certificate against ca_file and the host name, and says why when it cannot."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.broker import DYNSEC, MosquittoBroker
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.tls import TlsFiles, generate_test_pki
from fabnet.bus.topics import Topic
from fabnet.errors import ConfigError, InvalidInput

USERS = {"hub": "hub-secret-1", "alice": "alice-secret-1"}


@pytest.fixture
def pki(tmp_path: Path) -> TlsFiles:
    return generate_test_pki(tmp_path / "pki", ["localhost", "127.0.0.1"])


@pytest.fixture
def broker(tmp_path: Path, pki: TlsFiles) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker", users=USERS, accounts=DYNSEC, tls=pki) as running:
        yield running


def settings(broker: MosquittoBroker, ca_file: Path | None, host: str = "127.0.0.1") -> BusSettings:
    return BusSettings(
        host, broker.tls_port, "hub", USERS["hub"], "tls-hub", tls=True, ca_file=ca_file,
        reconnect_max_s=1,
    )  # fmt: skip


def test_round_trip_over_tls_with_the_generated_ca(broker: MosquittoBroker, pki: TlsFiles) -> None:
    inbox: queue.Queue[tuple[Topic, m.Message]] = queue.Queue()
    bus = BusClient(settings(broker, pki.ca_cert, host="localhost"))
    bus.subscribe(topics.hub_status(), lambda t, msg: inbox.put((t, msg)))
    bus.start()
    try:
        assert bus.wait_connected(10), bus.last_error
        sent = m.HubStatus(hub_id="hub", state=m.HubState.ONLINE, version="0.1.0")
        assert bus.publish(topics.hub_status(), sent).wait(5)
        _, got = inbox.get(timeout=5)
        assert got.id == sent.id
    finally:
        bus.stop()


def _refused(bus_settings: BusSettings) -> str:
    """The client's explanation after it failed to connect."""
    bus = BusClient(bus_settings)
    bus.start()
    try:
        assert not bus.wait_connected(2)
        return bus.last_error or ""
    finally:
        bus.stop()


def test_without_the_ca_the_broker_is_not_trusted(broker: MosquittoBroker) -> None:
    error = _refused(settings(broker, None))
    assert "not trusted by the system's CAs" in error


def test_a_wrong_ca_is_refused(broker: MosquittoBroker, tmp_path: Path) -> None:
    other = generate_test_pki(tmp_path / "other", ["localhost", "127.0.0.1"])
    error = _refused(settings(broker, other.ca_cert))
    assert f"not trusted by ca_file {other.ca_cert}" in error


def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    elsewhere = generate_test_pki(tmp_path / "pki", ["broker.example"])
    with MosquittoBroker(tmp_path / "b", users=USERS, accounts=DYNSEC, tls=elsewhere) as broker:
        error = _refused(settings(broker, elsewhere.ca_cert))
    assert "not valid for '127.0.0.1'" in error


def test_plain_client_on_the_tls_port_fails(broker: MosquittoBroker, pki: TlsFiles) -> None:
    plain = replace(settings(broker, None), tls=False)
    bus = BusClient(plain)
    bus.start()
    try:
        assert not bus.wait_connected(2)
    finally:
        bus.stop()


def test_ca_file_is_checked_at_the_edge(tmp_path: Path, pki: TlsFiles) -> None:
    base = BusSettings("127.0.0.1", 8883, "hub", "x", "c", tls=True, ca_file=pki.ca_cert)
    with pytest.raises(InvalidInput, match="use mqtts://"):
        BusClient(replace(base, tls=False))
    with pytest.raises(ConfigError, match="does not exist"):
        BusClient(replace(base, ca_file=tmp_path / "nope.crt"))
    (tmp_path / "junk.crt").write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM CA certificate"):
        BusClient(replace(base, ca_file=tmp_path / "junk.crt"))
