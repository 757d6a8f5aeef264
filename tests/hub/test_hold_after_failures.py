"""A machine that keeps failing is held (issue 10, item 4), through the whole network: real
Mosquitto, the hub process object and an agent. After ``max_consecutive_failures`` failures in
a row the hub stops offering it work, records why, and its agent logs the hub's
``machine.held``; once released, it is offered work again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fabnet.agent.process import Agent
from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.config import load_agent_config, load_hub_config
from fabnet.core.states import FailureCause, MachineState, TaskState
from fabnet.core.tasks import Attempt
from fabnet.drivers.sim import SimDriver
from fabnet.hub.process import Hub
from fabnet.hub.service import JobRequest
from fabnet.sim.makers import SimMachine, SimMaker, write_network

MAKER, MACHINE = "ada", "mk3s-1"
MACHINE_ID = f"{MAKER}/{MACHINE}"
SWEEP_S = 0.3


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Hub, Agent, SimDriver]]:
    broker_port, http_port = free_port(), free_port()
    maker = SimMaker(MAKER, (SimMachine(MACHINE, "prusa_mk3s", "PLA", ("PLA",)),))
    files = write_network(tmp_path, broker_port, (maker,), http_port=http_port,
                          offer_timeout_s=5.0, sweep_interval_s=SWEEP_S)  # fmt: skip
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users)
    broker.start()
    hub = Hub(load_hub_config(files.hub_config))
    hub.start()
    driver = SimDriver(speed=2000.0, min_duration_s=0.2, fail_at_percent=20.0)
    agent = Agent(load_agent_config(files.agent_configs[MAKER]), drivers={MACHINE: driver})
    agent.start()
    yield hub, agent, driver
    agent.stop(timeout_s=5)
    hub.stop()
    broker.stop()


def _submit(hub: Hub, quantity: int) -> list[str]:
    assert hub.service is not None
    spec = hub.service.submit(
        JobRequest(design="cube-xyz-20mm", quantity=quantity, material="PLA", requester="rita")
    ).spec
    return [t.task_id for t in hub.store.tasks.find(job_id=spec.job_id)]


def _attempts(hub: Hub) -> list[Attempt]:
    return [a for t in hub.store.tasks.find() for a in hub.store.tasks.get(t.task_id).attempts]


def _failed_attempts(hub: Hub) -> int:
    return sum(1 for a in _attempts(hub) if a.machine_id == MACHINE_ID and a.failure is not None)


def test_a_machine_failing_three_times_in_a_row_is_held_until_released(
    network: tuple[Hub, Agent, SimDriver], caplog: pytest.LogCaptureFixture
) -> None:
    hub, agent, _ = network
    caplog.set_level(logging.WARNING, logger="fabnet.agent.runner")
    _submit(hub, 3)  # a machine that failed a task is not offered that task again
    for n in range(1, 4):
        wait_until(lambda n=n: _failed_attempts(hub) >= n, 60.0, f"failure {n}")  # type: ignore[misc]
        agent.reset_machine(MACHINE)  # the maker reconnects the machine after its error
    hold = hub.store.holds.get(MACHINE_ID)
    assert hold is not None and "3 failures in a row" in hold.reason, hold
    causes = {a.failure for a in _attempts(hub)}
    assert causes == {FailureCause.THERMAL_FAULT}
    wait_until(lambda: "is on hold on the hub after 3 failures" in caplog.text, 30.0, "the notice")

    later = _submit(hub, 1)[0]
    wait_until(
        lambda: hub.store.catalog.get_machine(MACHINE_ID).state is MachineState.IDLE,
        30.0, "the machine idle again",
    )  # fmt: skip
    time.sleep(10 * SWEEP_S)  # ten sweeps with an idle machine and a queued task
    assert hub.store.tasks.get(later).state is TaskState.QUEUED
    assert hub.store.catalog.get_machine(MACHINE_ID).held

    hub.store.holds.release(MACHINE_ID, datetime.now(UTC))  # what the API's release does
    wait_until(lambda: bool(hub.store.tasks.get(later).attempts), 30.0, "an offer after release")
    assert hub.store.tasks.get(later).attempts[0].machine_id == MACHINE_ID
