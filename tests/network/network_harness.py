"""A real network for the end-to-end tests: Mosquitto, a hub and makers' agents.

Each part can run in this process or as a child process (``python -m fabnet.cli ...``) from
the same generated configuration files, so a test can SIGKILL exactly the part it means to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fabnet.agent.process import Agent
from fabnet.bus.broker import MosquittoBroker
from fabnet.config import load_agent_config, load_hub_config
from fabnet.hub.process import Hub
from fabnet.sim.makers import NetworkFiles, SimMachine, SimMaker
from fabnet.store import Store

# Three makers, five FDM machines, all taking PLA: enough to spread a job and to lose one.
TEST_MAKERS: tuple[SimMaker, ...] = (
    SimMaker(
        "ada",
        (
            SimMachine("mk3s-1", "prusa_mk3s", "PLA", ("PLA",)),
            SimMachine("mini-1", "prusa_mini", "PLA", ("PLA",)),
        ),
    ),
    SimMaker(
        "bruno",
        (
            SimMachine("ender3-1", "creality_ender3", "PLA", ("PLA",)),
            SimMachine("ender3-2", "creality_ender3", "PLA", ("PLA",)),
        ),
    ),
    SimMaker("chen", (SimMachine("voron-1", "voron24_350", "PLA", ("PLA",)),)),
)
SPEED = 400.0  # a 20 mm cube (~20 min) runs ~3 s
LEASE_S = 6.0


@dataclass
class Network:
    root: Path
    files: NetworkFiles
    broker: MosquittoBroker
    http_port: int
    hub: Hub | None = None
    hub_proc: subprocess.Popen[bytes] | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    agent_procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def store(self) -> Store:
        """A separate connection to the hub's database (as another hub process would have)."""
        return Store(f"sqlite:///{self.root / 'hub' / 'fabnet.db'}")

    # -- hub --------------------------------------------------------------------------------

    def start_hub(self) -> Hub:
        self.hub = Hub(load_hub_config(self.files.hub_config))
        self.hub.start()
        return self.hub

    def spawn_hub(self) -> subprocess.Popen[bytes]:
        self.hub_proc = _spawn(self.root / "hub.log", "hub", "--config", str(self.files.hub_config))
        wait_for(lambda: _http_up(self.http_port), 20, "hub HTTP to answer")
        return self.hub_proc

    # -- agents -----------------------------------------------------------------------------

    def start_agent(self, agent_id: str) -> Agent:
        config = load_agent_config(self.files.agent_configs[agent_id])
        agent = Agent(replace(config, hub_url=self.hub_url))
        agent.start()
        self.agents[agent_id] = agent
        return agent

    def spawn_agent(self, agent_id: str) -> subprocess.Popen[bytes]:
        path = str(self.files.agent_configs[agent_id])
        proc = _spawn(self.root / f"agent-{agent_id}.log", "agent", "--config", path)
        self.agent_procs[agent_id] = proc
        return proc

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        for proc in [*self.agent_procs.values(), self.hub_proc]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.hub is not None:
            self.hub.stop()
        self.broker.stop()


def _spawn(log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fabnet.cli", "-v", *args], stdout=out, stderr=out, env=env
        )


def _http_up(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 0.2 s; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
