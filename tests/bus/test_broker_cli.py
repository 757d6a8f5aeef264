"""``fabnet broker-config --dynsec --tls``: the files it writes run a real Mosquitto with the
dynamic-security plugin and a TLS listener that the hub and agents reach with the CA."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fabnet.bus.broker import DYNSEC, MosquittoBroker, check_login, free_port
from fabnet.bus.cli import broker_config_command
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.tls import TlsFiles

HUB_PASSWORD = "hub-password-0123456789abcdef"


def hub_toml(folder: Path) -> Path:
    path = folder / "hub.toml"
    path.write_text(
        "[broker]\n"
        'url = "mqtt://127.0.0.1:18830"\n'
        'username = "hubby"\n'
        f'password = "{HUB_PASSWORD}"\n'
        "[http]\n"
        'api_token = "operator-token-0123456789abcdef"\n'
    )
    return path


def test_dynsec_and_tls_from_the_hub_config(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        broker_config_command,
        ["--out", str(out), "--config", str(hub_toml(tmp_path)), "--dynsec", "--tls",
         "--tls-port", "18883", "--tls-name", "localhost", "--agent", "alice:alice-pw-1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"mosquitto.conf", "dynamic-security.json", "ca.crt", "server.key"} <= names
    assert "passwd" not in names and (out / "ca.key").stat().st_mode & 0o077 == 0
    conf = (out / "mosquitto.conf").read_text()
    assert "listener 18830 127.0.0.1\n" in conf and "listener 18883\n" in conf
    assert "mosquitto_dynamic_security.so" in conf and "password_file" not in conf
    assert 'url = "mqtts://localhost:18883"' in result.output
    assert "hub-password" not in (out / "dynamic-security.json").read_text()
    pki = TlsFiles.in_dir(out)
    with MosquittoBroker(out, accounts=DYNSEC, tls=pki, tls_port=free_port()) as broker:
        assert check_login(broker.host, broker.port, "hubby", HUB_PASSWORD)
        assert check_login(broker.host, broker.port, "alice", "alice-pw-1")
        assert not check_login(broker.host, broker.port, "hub", HUB_PASSWORD)
        settings = BusSettings(
            "localhost", broker.tls_port, "alice", "alice-pw-1", "alice", tls=True,
            ca_file=pki.ca_cert,
        )  # fmt: skip
        with BusClient(settings) as bus:
            assert bus.wait_connected(10), bus.last_error


def test_static_setup_is_unchanged_and_needs_a_hub_password(tmp_path: Path) -> None:
    result = CliRunner().invoke(broker_config_command, ["--out", str(tmp_path / "b")])
    assert result.exit_code != 0 and "--hub-password" in result.output
    result = CliRunner().invoke(
        broker_config_command, ["--out", str(tmp_path / "c"), "--hub-password", "x"]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "c").iterdir()} == {"passwd", "acl", "mosquitto.conf"}
