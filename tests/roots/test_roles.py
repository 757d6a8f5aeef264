"""``fabnet hub --role``: what each role refuses to run on, and the client id each process uses."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fabnet.bus.topics import check_id
from fabnet.config import HubConfig, load_hub_config
from fabnet.errors import ConfigError
from fabnet.lifetime import tied_run
from fabnet.roots.roles import Role, check_role, client_id
from fabnet.sim.makers import write_network


@pytest.fixture
def config(tmp_path: Path) -> HubConfig:
    files = write_network(tmp_path, 1883, (), http_port=5000)
    return load_hub_config(files.hub_config)


def test_sqlite_runs_one_process_only(config: HubConfig) -> None:
    assert config.database_url.startswith("sqlite")
    check_role(config, Role.ALL)
    for role in (Role.API, Role.DISPATCHER):
        with pytest.raises(ConfigError, match=f"--role {role.value} needs PostgreSQL"):
            check_role(config, role)


def test_a_password_file_broker_and_a_dispatcher_without_public_url_are_refused(
    config: HubConfig,
) -> None:
    pg = replace(config, database_url="postgresql+psycopg2://u@127.0.0.1/fabnet")
    with pytest.raises(ConfigError, match='accounts = "dynsec"'):
        check_role(replace(pg, broker=replace(pg.broker, accounts="file")), Role.API)
    check_role(pg, Role.API)
    with pytest.raises(ConfigError, match="public_url"):
        check_role(pg, Role.DISPATCHER)
    check_role(replace(pg, public_url="http://lb.example:5000"), Role.DISPATCHER)


def test_each_process_gets_its_own_valid_client_id(config: HubConfig) -> None:
    assert client_id(config, Role.ALL) == f"fabnet-hub-{config.hub_id}"  # as before issue 9
    a = client_id(config, Role.DISPATCHER, host="node-1.example.org", pid=41)
    b = client_id(config, Role.DISPATCHER, host="node-1.example.org", pid=42)
    c = client_id(config, Role.API, host="node-1.example.org", pid=41)
    assert len({a, b, c}) == 3
    assert a == "fabnet-hub-dispatcher-node-1-example-org-41"
    long_host = client_id(config, Role.API, host="h" * 200, pid=123456)
    for cid in (a, b, c, long_host):
        check_id(cid, "client id")  # the broker's and fabnet's id rules
    assert long_host.endswith("-123456")


def test_the_command_refuses_a_role_sqlite_cannot_serve(config: HubConfig, tmp_path: Path) -> None:
    hub_toml = tmp_path / "hub.toml"
    done = tied_run(
        [sys.executable, "-m", "fabnet.cli", "hub", "--config", str(hub_toml), "--role", "api"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--role api needs PostgreSQL" in done.stderr
    assert "one `fabnet hub` (--role all)" in done.stderr
