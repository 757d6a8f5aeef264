"""``[broker]``: mqtt:// and mqtts:// URLs, the CA file and the hub's account mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_files import agent_toml, hub_toml

from fabnet.config import BrokerConfig, load_agent_config, load_hub_config
from fabnet.errors import ConfigError


def test_url_schemes_set_tls_and_default_ports() -> None:
    plain = BrokerConfig.from_url("mqtt://broker.example", "u", "p", "x")
    secure = BrokerConfig.from_url("mqtts://broker.example", "u", "p", "x")
    explicit = BrokerConfig.from_url("mqtts://10.0.0.2:9883", "u", "p", "x")
    assert (plain.tls, plain.port) == (False, 1883)
    assert (secure.tls, secure.port, secure.url) == (True, 8883, "mqtts://broker.example:8883")
    assert (explicit.host, explicit.port) == ("10.0.0.2", 9883)


@pytest.mark.parametrize("url", ["http://h:1883", "mqtt://", "mqtt://h:99999", "mqtt://h/x"])
def test_bad_urls_name_the_value(url: str) -> None:
    with pytest.raises(ConfigError, match="broker.url must look like"):
        BrokerConfig.from_url(url, "u", "p", "hub.toml")


def test_hub_broker_keys(tmp_path: Path) -> None:
    path = hub_toml(
        tmp_path,
        broker='url = "mqtts://broker:8883"\nca_file = "certs/ca.pem"\naccounts = "file"\n'
        'password_file = "mosquitto/passwords"',
    )
    broker = load_hub_config(path).broker
    assert broker.tls and broker.accounts == "file"
    assert broker.ca_file == tmp_path / "certs" / "ca.pem"
    assert broker.password_file == tmp_path / "mosquitto" / "passwords"


def test_hub_defaults_to_dynamic_security_and_system_cas(tmp_path: Path) -> None:
    broker = load_hub_config(hub_toml(tmp_path)).broker
    assert (broker.accounts, broker.ca_file, broker.password_file, broker.tls) == (
        "dynsec",
        None,
        None,
        False,
    )


def test_accounts_choices_and_agent_has_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="broker.accounts must be one of dynsec, file, none"):
        load_hub_config(hub_toml(tmp_path, broker='accounts = "ldap"'))
    with pytest.raises(ConfigError, match="unknown key.*broker.accounts"):
        load_agent_config(agent_toml(tmp_path, broker='accounts = "file"'))


def test_ca_file_needs_mqtts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file is set but broker.url"):
        load_agent_config(agent_toml(tmp_path, broker='ca_file = "/etc/ssl/ca.pem"'))
    agent = load_agent_config(
        agent_toml(tmp_path, broker='url = "mqtts://b"\nca_file = "/etc/ssl/ca.pem"')
    )
    assert agent.broker.ca_file == Path("/etc/ssl/ca.pem") and agent.broker.port == 8883
