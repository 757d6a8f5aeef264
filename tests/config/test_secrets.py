"""Placeholder and short secrets are refused at start; ``fabnet init hub`` writes strong ones."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from config_files import agent_toml, hub_toml

from fabnet.config import load_agent_config, load_hub_config
from fabnet.errors import ConfigError
from fabnet.hub.cli import init


@pytest.mark.parametrize("value", ["change-me", "change-me-too", "change-me-please-0123", "<x>"])
def test_placeholders_are_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"hub.toml: http.api_token is a placeholder"):
        load_hub_config(hub_toml(tmp_path, http=f'api_token = "{value}"'))
    with pytest.raises(ConfigError, match=r"hub.toml: broker.password is a placeholder"):
        load_hub_config(hub_toml(tmp_path, broker=f'password = "{value}"'))


def test_short_secrets_are_refused_without_echoing_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="api_token is too short") as caught:
        load_hub_config(hub_toml(tmp_path, http='api_token = "hunter2-hunter2"'))
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match="broker.password is too short"):
        load_agent_config(agent_toml(tmp_path, broker='password = "alice-secret-1"'))


def test_short_secret_from_env_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABNET_BROKER_PASSWORD", "short")
    with pytest.raises(ConfigError, match=r"FABNET_BROKER_PASSWORD \(for broker.password\) is"):
        load_hub_config(hub_toml(tmp_path))


def test_an_unregistered_agent_says_to_register(tmp_path: Path) -> None:
    out = tmp_path / "agent.toml"
    assert CliRunner().invoke(init, ["agent", "-o", str(out)]).exit_code == 0
    with pytest.raises(ConfigError) as caught:
        load_agent_config(out)
    assert str(caught.value) == (
        f"{out}: broker.password is a placeholder; register the machine first (see README)"
    )


def test_init_hub_writes_strong_distinct_secrets_to_a_private_file(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "hub.toml", tmp_path / "b" / "hub.toml"
    for path in (one, two):
        result = CliRunner().invoke(init, ["hub", "-o", str(path)])
        assert result.exit_code == 0, result.output
    first, second = load_hub_config(one), load_hub_config(two)
    assert len(first.api_token) >= 32 and len(first.broker.password) >= 32
    assert first.api_token != first.broker.password
    assert {first.api_token, first.broker.password}.isdisjoint(
        {second.api_token, second.broker.password}
    )
    assert stat.S_IMODE(one.stat().st_mode) == 0o600
    text = one.read_text()
    assert "# Secret: the hub's own broker password" in text
    assert "# Secret: the operator's API token" in text
