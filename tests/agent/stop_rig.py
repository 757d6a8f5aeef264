"""A real network for the stop tests: Mosquitto, an in-process hub, and one maker whose only
machine is a Marlin printer simulated on a pty (with a state file), driven by the real Marlin
driver from an in-process agent or a ``fabnet agent`` child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fabnet.agent.process import Agent
from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.config import load_agent_config, load_hub_config
from fabnet.core.states import TaskState
from fabnet.core.tasks import TaskSnapshot
from fabnet.hub.process import Hub
from fabnet.hub.service import JobRequest
from fabnet.sim.makers import SimMaker, write_network
from fabnet.sim.marlin import MarlinSimulator
from fabnet.sim.marlin_state import read_state

MAKER = "ada"
MACHINE = "mk3s-1"
SIM_BAUD = 1_000_000  # the same pacing code as 115200, ten times quicker
LEASE_S = 120.0  # far longer than any test: a requeue seen here is the hand-back, not a lease


@dataclass
class StopRig:
    root: Path
    hub: Hub
    broker: MosquittoBroker
    sim: MarlinSimulator
    state_file: Path
    agent_toml: Path
    agents: list[Agent] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_agent(self) -> Agent:
        agent = Agent(load_agent_config(self.agent_toml))
        agent.start()
        self.agents.append(agent)
        return agent

    def spawn_agent(self, *options: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "fabnet.cli", "-v", "agent", "--config"]
        with (self.root / "agent.log").open("ab") as log:
            proc = subprocess.Popen(
                [*argv, str(self.agent_toml), *options], stdout=log, stderr=log, env=env
            )
        self.procs.append(proc)
        return proc

    def agent_log(self) -> str:
        path = self.root / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def submit(self, design: str = "cube-xyz-20mm") -> str:
        assert self.hub.service is not None
        info = self.hub.service.submit(
            JobRequest(design=design, quantity=1, material="PLA", requester="tester")
        )
        return str(info.spec.job_id)

    def task(self, job_id: str) -> TaskSnapshot:
        (task,) = self.hub.store.tasks.find(job_id=job_id)
        return self.hub.store.tasks.get(task.task_id)

    def state(self) -> dict[str, Any]:
        return read_state(self.state_file)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition``; fail naming ``what`` after ``timeout_s`` (a bound, not a claim)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def running(rig: StopRig, job_id: str) -> bool:
    """The task runs on the machine and the printer has been told to heat."""
    state = rig.state()
    heating = state["hotend_target_c"] > 0 or state["bed_target_c"] > 0
    return rig.task(job_id).state is TaskState.RUNNING and heating


def safe(rig: StopRig) -> bool:
    state = rig.state()
    return state["hotend_target_c"] == 0 and state["bed_target_c"] == 0 and not state["busy"]


def _agent_toml(root: Path, broker_port: int, http_port: int, password: str, pty: str) -> Path:
    path = root / "agent.toml"
    path.write_text(f'''[agent]
id = "{MAKER}"
hub_url = "http://127.0.0.1:{http_port}"
data_dir = "{root / "agent"}"

[broker]
url = "mqtt://127.0.0.1:{broker_port}"
password = "{password}"

[[machines]]
id = "{MACHINE}"
profile = "prusa_mk3s"
driver = "marlin"
material = "PLA"

[machines.policy]
materials = ["PLA"]
max_task_hours = 24
auto_accept = true
windows = []

[machines.driver_options]
port = "{pty}"
baud = {SIM_BAUD}
''')
    return path


@pytest.fixture
def stop_rig_factory(tmp_path: Path) -> Iterator[Callable[[float], StopRig]]:
    """``make(sim_speed)``: broker, hub and simulator started; agents are the test's to start."""
    made: list[StopRig] = []

    def make(sim_speed: float) -> StopRig:
        broker_port, http_port = free_port(), free_port()
        files = write_network(
            tmp_path, broker_port, (SimMaker(MAKER, ()),), http_port=http_port,
            lease_s=LEASE_S, offer_timeout_s=5.0, sweep_interval_s=0.3,
        )  # fmt: skip
        broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users)
        broker.start()
        hub = Hub(load_hub_config(files.hub_config))
        hub.start()
        state_file = tmp_path / "sim-state.json"
        sim = MarlinSimulator(baud=SIM_BAUD, speed=sim_speed, state_file=state_file)
        pty = sim.start()
        toml = _agent_toml(tmp_path, broker_port, http_port, files.users[MAKER], pty)
        rig = StopRig(tmp_path, hub, broker, sim, state_file, toml)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        for agent in rig.agents:
            agent.stop()
        for proc in rig.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        rig.sim.close()
        rig.hub.stop()
        rig.broker.stop()
