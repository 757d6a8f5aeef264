"""A whole fabnet network in one process: its own Mosquitto, a hub and simulated makers.

``fabnet demo`` runs one; the network tests run one (or its parts as separate processes, from
the same generated configuration files, so that they can be killed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.config import load_agent_config, load_hub_config
from fabnet.roots.agent import Agent
from fabnet.roots.hub import Hub
from fabnet.sim.makers import DEMO_MAKERS, NetworkFiles, SimMaker, write_network

log = logging.getLogger(__name__)


@dataclass
class SimNetwork:
    """Start with ``start()``, stop with ``stop()``; every part is reachable for inspection."""

    root: Path
    makers: tuple[SimMaker, ...] = DEMO_MAKERS
    speed: float = 120.0
    http_port: int = 0
    lease_s: float = 30.0
    broker: MosquittoBroker | None = None
    files: NetworkFiles | None = None
    hub: Hub | None = None
    agents: dict[str, Agent] = field(default_factory=dict)

    def start(self, *, with_agents: bool = True) -> None:
        """Start the broker, the hub (on ``http_port``, or a free port if 0) and the agents."""
        port = free_port()
        if self.http_port == 0:
            self.http_port = free_port()
        self.files = write_network(
            self.root,
            port,
            self.makers,
            http_port=self.http_port,
            speed=self.speed,
            lease_s=self.lease_s,
        )
        self.broker = MosquittoBroker(
            self.root / "broker", port, users=self.files.users, accounts="dynsec"
        )
        self.broker.start()
        self.hub = Hub(load_hub_config(self.files.hub_config))
        self.hub.start()
        if with_agents:
            for agent_id in self.files.agent_configs:
                self.start_agent(agent_id)

    def agent_config_path(self, agent_id: str) -> Path:
        assert self.files is not None
        return self.files.agent_configs[agent_id]

    def start_agent(self, agent_id: str) -> Agent:
        """Start one maker's agent in this process (its hub URL is the running hub's)."""
        assert self.hub is not None
        config = load_agent_config(self.agent_config_path(agent_id))
        config = replace(config, hub_url=self.hub.public_url)
        agent = Agent(config)
        agent.start()
        self.agents[agent_id] = agent
        return agent

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.agents.clear()
        if self.hub:
            self.hub.stop()
        if self.broker:
            self.broker.stop()
