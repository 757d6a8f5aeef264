"""docker/compose.yaml without a Docker engine: its services, health checks, start order,
volumes and users; every ``FABNET_*`` variable it sets is one the config loader takes (the
mounted docker/hub.toml and docker/agent.toml load with them); every path it mounts or the
Dockerfile copies is in the repository."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from compose_support import (
    DOCKER,
    DOT_ENV,
    REPO,
    bind_mounts,
    environment,
    load_compose,
    service,
)

from fabnet.bus.messages import MAX_PAYLOAD_BYTES
from fabnet.bus.mosquitto_conf import PACKET_MARGIN_BYTES
from fabnet.config import load_agent_config, load_hub_config
from fabnet.config_env import OTHER_VARIABLES, config_variable

FABNET_USER = "10001"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_services_and_their_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"broker-init", "broker", "postgres", "hub", "agent"}
    assert service(compose, "broker")["image"] == "eclipse-mosquitto:2"
    assert service(compose, "postgres")["image"] == "postgres:16"
    for name in ("broker-init", "hub", "agent"):
        build = service(compose, name)["build"]
        assert build == {"context": "..", "dockerfile": "docker/Dockerfile"}, name


def test_start_order_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in service(compose, name)["depends_on"].items()}

    assert conditions("broker") == {"broker-init": "service_completed_successfully"}
    assert conditions("hub") == {"postgres": "service_healthy", "broker": "service_healthy"}
    assert conditions("agent") == {"broker": "service_healthy", "hub": "service_healthy"}


def test_health_checks(compose: dict[str, Any]) -> None:
    postgres = service(compose, "postgres")["healthcheck"]["test"]
    assert postgres[0] == "CMD-SHELL" and postgres[1].startswith("pg_isready ")
    hub = " ".join(service(compose, "hub")["healthcheck"]["test"])
    assert "http://127.0.0.1:5000/healthz" in hub
    broker = " ".join(service(compose, "broker")["healthcheck"]["test"])
    assert "mosquitto_sub" in broker and "-u hub" in broker
    for name in ("broker", "postgres", "hub"):
        check = service(compose, name)["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(check), name


def test_postgres_password_and_volumes(compose: dict[str, Any]) -> None:
    postgres = service(compose, "postgres")
    env = environment(postgres)
    assert env["POSTGRES_PASSWORD"] == DOT_ENV["POSTGRES_PASSWORD"]
    assert "POSTGRES_HOST_AUTH_METHOD" not in env  # no trust
    named = set(compose["volumes"])
    assert {"broker-data", "postgres-data", "hub-data", "agent-data"} <= named
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "broker-data:/mosquitto/data" in service(compose, "broker")["volumes"]
    assert "broker-data:/var/lib/fabnet-broker" in service(compose, "broker-init")["volumes"]
    assert "hub-data:/var/lib/fabnet" in service(compose, "hub")["volumes"]
    assert "agent-data:/var/lib/fabnet" in service(compose, "agent")["volumes"]


def test_hub_binds_all_interfaces_and_publishes_its_port(compose: dict[str, Any]) -> None:
    hub = service(compose, "hub")
    assert environment(hub)["FABNET_HTTP_HOST"] == "0.0.0.0"
    assert "5000:5000" in hub["ports"]
    assert "1883:1883" in service(compose, "broker")["ports"]
    with compose_env(hub):
        config = load_hub_config(DOCKER / "hub.toml")
    assert (config.http_host, config.http_port) == ("0.0.0.0", 5000)


def test_fabnet_services_run_as_a_non_root_user(compose: dict[str, Any]) -> None:
    for name in ("hub", "agent"):
        assert service(compose, name)["user"].split(":")[0] == FABNET_USER, name
    dockerfile = (DOCKER / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] == "fabnet", "the image must end as the fabnet user"
    assert f"--uid {FABNET_USER}" in dockerfile


@contextmanager
def compose_env(svc: dict[str, Any]) -> Iterator[None]:
    """The process environment as the container has it: the service's variables, no others
    of ours."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("FABNET_")]:
        del os.environ[name]
    os.environ.update(environment(svc))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_every_fabnet_variable_is_one_the_loader_takes(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for variable in environment(svc):
            if variable.startswith("FABNET_"):
                known = config_variable(variable) is not None or variable in OTHER_VARIABLES
                assert known, f"{name}: {variable} is no fabnet setting"


def test_mounted_configs_load_with_the_services_variables(compose: dict[str, Any]) -> None:
    with compose_env(service(compose, "hub")):
        hub = load_hub_config(DOCKER / "hub.toml")
    assert hub.database_url == (
        f"postgresql+psycopg2://fabnet:{DOT_ENV['POSTGRES_PASSWORD']}@postgres:5432/fabnet"
    )
    assert (hub.broker.host, hub.broker.port, hub.broker.username) == ("broker", 1883, "hub")
    assert hub.broker.password == DOT_ENV["HUB_BROKER_PASSWORD"]
    assert hub.broker.accounts == "dynsec"
    assert hub.api_token == DOT_ENV["API_TOKEN"]
    assert hub.public_url == "http://hub:5000"
    assert hub.data_dir == Path("/var/lib/fabnet/hub")
    with compose_env(service(compose, "agent")):
        agent = load_agent_config(DOCKER / "agent.toml")
    assert agent.agent_id == "sample-maker"
    assert agent.broker.password == DOT_ENV["SAMPLE_AGENT_PASSWORD"]
    assert agent.hub_url == "http://hub:5000"
    assert {m.driver for m in agent.machines} == {"sim"}
    assert agent.data_dir == Path("/var/lib/fabnet/agent")
    command = service(compose, "broker-init")["command"][0]
    assert f'--agent "{agent.agent_id}:$SAMPLE_AGENT_PASSWORD"' in command


def test_every_mounted_or_copied_path_is_in_the_repository(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for source, _, options in bind_mounts(svc):
            assert (DOCKER / source).exists(), f"{name} mounts {source}, which is not in docker/"
            assert options == "ro", f"{name}: {source} must be mounted read-only"
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", (DOCKER / "Dockerfile").read_text(), re.M)
    for line in copied:
        for source in line.split():
            assert (REPO / source).exists(), f"the Dockerfile copies {source}, which is missing"
    mounted = {t for svc in compose["services"].values() for _, t, _ in bind_mounts(svc)}
    assert {"/etc/fabnet/hub.toml", "/etc/fabnet/agent.toml"} <= mounted
    hub_command = service(compose, "hub")["command"]
    assert hub_command[-2:] == ["--config", "/etc/fabnet/hub.toml"]


def test_broker_config_carries_what_fabnet_needs() -> None:
    conf = (DOCKER / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert re.search(r"^plugin \S+/mosquitto_dynamic_security\.so$", conf, re.M)
    assert "plugin_opt_config_file /mosquitto/data/dynamic-security.json" in conf
    assert "persistence_location /mosquitto/data/" in conf
    size = re.search(r"^max_packet_size (\d+)$", conf, re.M)
    assert size and int(size.group(1)) == MAX_PAYLOAD_BYTES + PACKET_MARGIN_BYTES


def test_dot_env_is_never_committed() -> None:
    assert ".env" in (DOCKER / ".gitignore").read_text().split()
    script = (DOCKER / "make-env.sh").read_text()
    for variable in DOT_ENV:
        assert f"{variable}=" in script, f"make-env.sh does not write {variable}"
