"""``FABNET_*`` variables go through the same typed, range-checked reader as the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_files import agent_toml, hub_toml

from fabnet.config import load_agent_config, load_hub_config
from fabnet.config_env import AGENT_KEYS, HUB_KEYS, OTHER_VARIABLES
from fabnet.errors import ConfigError
from fabnet.hub.cli import HUB_EXAMPLE


def test_database_url_from_env_without_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABNET_DATABASE_URL", "postgresql+psycopg2://fab@db/fabnet")
    config = load_hub_config(hub_toml(tmp_path, database=None))
    assert config.database_url == "postgresql+psycopg2://fab@db/fabnet"


def test_env_overrides_keys_with_underscores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABNET_HUB_DATA_DIR", "/srv/fabnet")
    monkeypatch.setenv("FABNET_HTTP_API_TOKEN", "from-the-environment-0123456789")
    monkeypatch.setenv("FABNET_HTTP_PORT", "8080")
    monkeypatch.setenv("FABNET_HUB_LEASE_S", "30.5")
    monkeypatch.setenv("FABNET_HTTP_THREADS", "32")
    config = load_hub_config(hub_toml(tmp_path))
    assert config.data_dir == Path("/srv/fabnet")
    assert config.api_token == "from-the-environment-0123456789"
    assert (config.http_port, config.lease_s, config.http_threads) == (8080, 30.5, 32)
    monkeypatch.setenv("FABNET_HTTP_THREADS", "2")  # too few to keep a thread for the API
    with pytest.raises(
        ConfigError, match=r"FABNET_HTTP_THREADS \(for http.threads\) must be 4..256"
    ):
        load_hub_config(hub_toml(tmp_path))


def test_a_bad_number_names_the_variable_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABNET_HTTP_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_hub_config(hub_toml(tmp_path))
    assert str(caught.value) == "FABNET_HTTP_PORT (for http.port) must be an integer, got 'abc'"
    monkeypatch.setenv("FABNET_HTTP_PORT", "70000")
    with pytest.raises(ConfigError, match=r"FABNET_HTTP_PORT \(for http.port\) must be 1..65535"):
        load_hub_config(hub_toml(tmp_path))


def test_a_misspelt_variable_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABNET_DATABSE_URL", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="environment variable FABNET_DATABSE_URL names no"):
        load_hub_config(hub_toml(tmp_path))
    with pytest.raises(ConfigError, match="FABNET_DATABSE_URL"):
        load_agent_config(agent_toml(tmp_path))


def test_the_other_configs_and_the_clis_variables_are_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in OTHER_VARIABLES - {"FABNET_PROFILES_DIR", "FABNET_DESIGNS_DIR"}:
        monkeypatch.setenv(name, "anything")
    monkeypatch.setenv("FABNET_DATABASE_URL", "sqlite:////srv/hub.db")  # the hub's, not the agent's
    monkeypatch.setenv("FABNET_AGENT_HUB_URL", "http://hub.example:5000")  # the agent's
    agent = load_agent_config(agent_toml(tmp_path))
    assert agent.hub_url == "http://hub.example:5000"
    assert load_hub_config(hub_toml(tmp_path)).database_url == "sqlite:////srv/hub.db"


def test_env_paths_are_taken_against_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir, cwd = tmp_path / "etc", tmp_path / "run"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("FABNET_AGENT_DATA_DIR", "state")
    assert load_agent_config(agent_toml(config_dir)).data_dir == cwd / "state"


def test_an_unknown_key_set_by_env_in_a_known_table_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABNET_AGENT_TOKEN", "x")
    with pytest.raises(ConfigError, match="FABNET_AGENT_TOKEN"):
        load_agent_config(agent_toml(tmp_path))


def test_every_key_of_the_hub_template_can_come_from_env() -> None:
    """The env table lists what the loader reads: each key the template writes is in it."""
    table = ""
    for line in HUB_EXAMPLE.splitlines():
        if line.startswith("[") and not line.startswith("[["):
            table = line.strip("[]")
        elif "=" in line and not line.startswith("#") and table != "slicers":
            assert line.split("=")[0].strip() in HUB_KEYS[table], (table, line)
    assert set(AGENT_KEYS["broker"]) <= set(HUB_KEYS["broker"])


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("FABNET_HUB_SLICER", "prusaslicer", "slicer", "prusaslicer"),
        ("FABNET_HUB_MAX_ATTEMPTS", "5", "max_attempts", 5),
        ("FABNET_BROKER_ACCOUNTS", "none", "broker", "none"),
        ("FABNET_HTTP_PUBLIC_URL", "https://hub.example", "public_url", "https://hub.example"),
    ],
)
def test_each_kind_of_value(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    monkeypatch.setenv(name, value)
    config = load_hub_config(hub_toml(tmp_path))
    got = config.broker.accounts if field == "broker" else getattr(config, field)
    assert got == expected
