"""A thermal fault in the middle of a print, through the whole network (Mosquitto, hub, agent,
the real Marlin driver on a pty against the simulator): the task ends ``failed`` with the
reason, and the printer's heaters are off. Both kinds: one the firmware reports (thermal
runaway, the firmware halts) and one only the host's temperature watch sees (a heater that
stops heating with its target still set; the watch's hold time from the machine's profile)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stop_rig import MAKER, SIM_BAUD, _agent_toml, wait_until

from fabnet.agent.process import Agent
from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.config import load_agent_config, load_hub_config
from fabnet.core.states import TaskState
from fabnet.hub.process import Hub
from fabnet.hub.service import JobRequest
from fabnet.profiles import profiles_dir
from fabnet.sim.makers import SimMaker, write_network
from fabnet.sim.marlin import MarlinSimulator
from fabnet.sim.marlin_faults import FaultPlan
from fabnet.sim.marlin_state import read_state

FAULT_LINE = 300  # well after the start G-code's heat-up waits (the cube's file has thousands)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Path, int, int, dict[str, str], Hub]]:
    broker_port, http_port = free_port(), free_port()
    files = write_network(
        tmp_path, broker_port, (SimMaker(MAKER, ()),), http_port=http_port,
        offer_timeout_s=5.0, sweep_interval_s=0.3,
    )  # fmt: skip
    hub_toml = files.hub_config.read_text().replace("max_attempts = 5", "max_attempts = 1")
    files.hub_config.write_text(hub_toml)
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users)
    broker.start()
    hub = Hub(load_hub_config(files.hub_config))
    hub.start()
    yield tmp_path, broker_port, http_port, files.users, hub
    hub.stop()
    broker.stop()


def _quick_watch_profile(root: Path) -> Path:
    """prusa_mk3s with a 5 s hold (same id: the hub matches it as the shipped one)."""
    text = (profiles_dir() / "prusa_mk3s.toml").read_text()
    assert "thermal_hold_s = 60" in text
    folder = root / "profiles"
    folder.mkdir()
    path = folder / "prusa_mk3s.toml"
    path.write_text(text.replace("thermal_hold_s = 60", "thermal_hold_s = 5"))
    return path


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (FaultPlan(thermal={FAULT_LINE: "runaway"}), "Thermal Runaway"),
        (FaultPlan(heater_off_at=FAULT_LINE), "stayed more than 15 °C below its target"),
    ],
    ids=["firmware-runaway", "watch-heater-lost"],
)
def test_a_thermal_fault_mid_print_fails_the_task_with_heaters_off(
    network: tuple[Path, int, int, dict[str, str], Hub], fault: FaultPlan, reason: str
) -> None:
    root, broker_port, http_port, users, hub = network
    state_file = root / "sim-state.json"
    sim = MarlinSimulator(baud=SIM_BAUD, speed=10.0, state_file=state_file, faults=fault)
    pty = sim.start()
    toml = _agent_toml(root, broker_port, http_port, users[MAKER], pty)
    toml.write_text(toml.read_text().replace('"prusa_mk3s"', f'"{_quick_watch_profile(root)}"'))
    agent = Agent(load_agent_config(toml))
    try:
        agent.start()
        assert hub.service is not None
        info = hub.service.submit(
            JobRequest(design="cube-xyz-20mm", quantity=1, material="PLA", requester="tester")
        )
        (task,) = hub.store.tasks.find(job_id=info.spec.job_id)

        def ended() -> bool:
            return hub.store.tasks.get(task.task_id).state.is_final

        wait_until(ended, 120.0, "the task to end")
        final = hub.store.tasks.get(task.task_id)
        assert final.state is TaskState.FAILED, final
        (attempt,) = final.attempts
        assert reason in attempt.detail, attempt.detail
        state = read_state(state_file)
        assert state["hotend_target_c"] == 0 and state["bed_target_c"] == 0, state
        assert state["files_completed"] == 0
        assert hub.store.telemetry.history(task.task_id), "the run's temperatures were kept"
    finally:
        agent.stop()
        sim.close()
