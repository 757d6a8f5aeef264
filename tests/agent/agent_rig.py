"""Fixtures for the agent tests: an artifact server, and a rig of one in-process agent with a
hub peer on a real Mosquitto."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agent_harness import ArtifactServer, HubPeer, write_agent_toml

from fabnet.agent.artifacts import FetchSettings
from fabnet.agent.process import Agent
from fabnet.bus.messages import AgentState, AgentStatus
from fabnet.config import AgentConfig, load_agent_config
from fabnet.drivers.base import Driver


@dataclass
class Rig:
    agent: Agent
    hub: HubPeer
    artifacts: ArtifactServer
    config: AgentConfig
    config_path: Path
    extra: list[Agent] = field(default_factory=list)

    @property
    def agent_id(self) -> str:
        return self.config.agent_id


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    server = ArtifactServer()
    server.start()
    yield server
    server.stop()


RigFactory = Callable[..., Rig]

FAST_FETCH = FetchSettings(timeout_s=5.0, attempts=2, backoff_s=0.1)


def build_rig(
    handle: Any, tmp_path: Path, artifacts: ArtifactServer, machines: str,
    drivers: dict[str, Driver] | None = None, start: bool = True,
) -> Rig:  # fmt: skip
    agent_id = f"ag{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    handle.add_users({agent_id: password})
    data_dir = tmp_path / agent_id
    path = write_agent_toml(
        tmp_path / f"{agent_id}.toml", agent_id, password, handle.port, artifacts.base_url,
        data_dir, machines,
    )  # fmt: skip
    config = load_agent_config(path)
    hub = HubPeer(handle.settings("hub"), agent_id)
    hub.start()
    agent = Agent(config, drivers=drivers, fetch=FAST_FETCH)
    rig = Rig(agent, hub, artifacts, config, path)
    if start:
        agent.start()
        hub.wait_for(AgentStatus, state=AgentState.ONLINE)
    return rig


@pytest.fixture
def make_rig(mosquitto: Any, tmp_path: Path, artifacts: ArtifactServer) -> Iterator[RigFactory]:
    """``make_rig(machines_toml, drivers=None)``: a started agent (a fresh broker user) and a
    hub peer watching it, on the session's Mosquitto; both stopped at the end."""
    rigs: list[Rig] = []

    def factory(machines: str, drivers: dict[str, Driver] | None = None, start: bool = True) -> Rig:
        rig = build_rig(mosquitto, tmp_path, artifacts, machines, drivers, start)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        rig.agent.stop(timeout_s=2)
        rig.hub.stop()
