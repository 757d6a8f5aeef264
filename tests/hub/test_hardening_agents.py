"""A hostile agent against a real hub and Mosquitto (issue 13, items 6, 10 and 14): forged
completions are not credited, a G-code token dies with its task, bad messages are counted and
logged one line each, and an agent cannot create machines without end."""

from __future__ import annotations

import logging
import queue
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.topics import Topic
from fabnet.core.states import TaskState
from fabnet.hub.process import Hub
from fabnet.hub.service import JobRequest
from fabnet.roots.network import SimNetwork
from fabnet.sim.makers import SimMachine, SimMaker

AGENT, MACHINE = "ada", "mk3s-1"
FORGED_SHA = "ee" * 32


@dataclass
class Rogue:
    """The agent ``ada`` played by the test over its own broker account."""

    hub: Hub
    bus: BusClient
    commands: queue.Queue[m.Message]

    def send(self, event: m.Message, machine: str = MACHINE) -> None:
        self.bus.publish(topics.machine_events(AGENT, machine), event).wait(5)

    def status(self, machine: str = MACHINE) -> None:
        caps = m.Capabilities(
            profile="prusa_mk3s",
            kind=m.MachineKind.FDM,
            volume_mm=m.Xyz(x=250.0, y=210.0, z=210.0),
            nozzle_mm=0.4,
            materials=("PLA",),
        )
        status = m.MachineStatus(
            machine=machine, state=m.MachineState.IDLE, capabilities=caps, materials_loaded=("PLA",)
        )
        self.bus.publish_status(topics.machine_status(AGENT, machine), status).wait(5)

    def next_command(self, kind: type[m.Message]) -> m.Message:
        while True:
            command = self.commands.get(timeout=60)
            if isinstance(command, kind):
                return command

    def dropped(self, reason: str, count: int) -> None:
        """Wait until the hub has dropped ``count`` messages for ``reason``."""
        drops = self.hub.dispatcher.drops
        wait_until(lambda: drops.counts().get(reason, 0) >= count, f"{count} {reason} drops")
        assert drops.counts()[reason] == count


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def rogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rogue]:
    monkeypatch.setenv("FABNET_HUB_MAX_MACHINES_PER_AGENT", "3")
    maker = SimMaker(AGENT, (SimMachine(MACHINE, "prusa_mk3s", "PLA", ("PLA",)),))
    network = SimNetwork(tmp_path / "net", makers=(maker,))
    network.start(with_agents=False)
    assert network.hub is not None and network.broker is not None and network.files is not None
    inbox: queue.Queue[m.Message] = queue.Queue()
    settings = BusSettings(
        network.broker.host, network.broker.port, AGENT, network.files.users[AGENT], AGENT
    )
    bus = BusClient(settings)

    def on_command(topic: Topic, msg: m.Message) -> None:
        inbox.put(msg)

    bus.subscribe(topics.agent_commands(AGENT), on_command)
    bus.start()
    try:
        assert bus.wait_connected(10), bus.last_error
        yield Rogue(network.hub, bus, inbox)
    finally:
        bus.stop()
        network.stop()


def download(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"X-Fabnet-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_a_plausible_completion_of_the_assigned_file_is_credited(rogue: Rogue) -> None:
    rogue.status()
    rogue.hub.service.submit(JobRequest(design="cube-xyz-20mm", quantity=1, material="PLA"))
    offer = rogue.next_command(m.TaskOffer)
    assert isinstance(offer, m.TaskOffer)
    ev = {"machine": MACHINE, "task_id": offer.task_id, "attempt": offer.attempt}
    rogue.send(m.TaskAccepted(**ev))
    # straight after the accept, before any G-code: not credited
    rogue.send(m.TaskCompleted(**ev, grams=5, machine_s=600, sha256=FORGED_SHA))
    assign = rogue.next_command(m.TaskAssign)
    assert isinstance(assign, m.TaskAssign)
    tasks = rogue.hub.store.tasks
    assert tasks.get(offer.task_id).state is not TaskState.DONE
    assert download(assign.url, assign.token) == 200
    rogue.send(m.TaskStarted(**ev))
    forged = [
        m.TaskCompleted(**ev, grams=5, machine_s=600, sha256=FORGED_SHA),
        m.TaskCompleted(**ev, grams=1e12, machine_s=600, sha256=assign.sha256),
        m.TaskCompleted(**ev, grams=5, machine_s=1e12, sha256=assign.sha256),
    ]
    for event in forged:
        rogue.send(event)
    rogue.dropped("completion", 4)
    assert tasks.get(offer.task_id).state is TaskState.RUNNING
    assert list(rogue.hub.store.ledger.entries()) == []
    rogue.send(m.TaskCompleted(**ev, grams=5, machine_s=600, sha256=assign.sha256))
    wait_until(lambda: tasks.get(offer.task_id).state is TaskState.DONE, "the real completion")
    (entry,) = rogue.hub.store.ledger.entries()
    assert entry.grams == 5
    # the token of a finished task no longer downloads
    assert download(assign.url, assign.token) == 404


def test_a_cancelled_tasks_token_stops_working(rogue: Rogue) -> None:
    rogue.status()
    job = rogue.hub.service.submit(JobRequest(design="cube-xyz-20mm", quantity=1, material="PLA"))
    offer = rogue.next_command(m.TaskOffer)
    assert isinstance(offer, m.TaskOffer)
    rogue.send(m.TaskAccepted(machine=MACHINE, task_id=offer.task_id, attempt=offer.attempt))
    assign = rogue.next_command(m.TaskAssign)
    assert isinstance(assign, m.TaskAssign)
    assert download(assign.url, assign.token) == 200
    rogue.hub.service.cancel(job.spec.job_id)
    wait_until(
        lambda: rogue.hub.store.tasks.get(offer.task_id).state is TaskState.CANCELLED, "cancel"
    )
    assert download(assign.url, assign.token) == 404


def test_bad_messages_are_one_line_each_and_machines_are_capped(
    rogue: Rogue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for n in range(5):
        rogue.status(f"m{n}")
    unknown = {"machine": "m0", "task_id": "0" * 32, "attempt": 1}
    for _ in range(3):
        rogue.send(m.TaskStarted(**unknown), machine="m0")
    rogue.dropped("machine-cap", 2)
    rogue.dropped("NotFound", 3)
    assert len(rogue.hub.store.catalog.list_machines(maker_id=AGENT)) == 3
    data = rogue.hub.config.data_dir  # issue 13, item 13: the hub's secrets are its own
    # the token secret lives in the database since issue 9
    for private in (data / "artifacts", data / "artifacts" / "gcode", data / "fabnet.db"):
        assert private.stat().st_mode & 0o077 == 0, private
    dispatch = [r for r in caplog.records if r.name == "fabnet.hub.dispatcher"]
    assert not [r for r in dispatch if r.exc_info], "no tracebacks for an agent's bad input"
    assert len([r for r in dispatch if "dropped #" in r.getMessage()]) == 5


def refused_login(settings: BusSettings) -> str:
    """Why the broker turned ``settings`` away (fails if it let them in)."""
    attacker = BusClient(settings)
    attacker.start()
    try:
        wait_until(lambda: attacker.last_error is not None, "the broker's answer")
        assert not attacker.connected and attacker.counters().connects == 0
        return attacker.last_error or ""
    finally:
        attacker.stop()


def test_a_client_id_takeover_changes_nothing_of_the_victims(tmp_path: Path) -> None:
    """Issue 13, item 1, end to end: bruno logs in under ada's client id and the hub's while
    ada's agent runs a task; the broker refuses him, and ada, her task and the hub carry on."""
    makers = (
        SimMaker(AGENT, (SimMachine(MACHINE, "prusa_mk3s", "PLA", ("PLA",)),)),
        SimMaker("bruno", (SimMachine("ender3-1", "creality_ender3", "PETG", ("PETG",)),)),
    )
    network = SimNetwork(tmp_path / "net", makers=makers, speed=1.0)
    network.start(with_agents=False)
    try:
        assert network.hub is not None and network.broker is not None
        assert network.files is not None
        hub, agent = network.hub, network.start_agent(AGENT)
        job = hub.service.submit(JobRequest(design="cube-xyz-20mm", quantity=1, material="PLA"))
        (task,) = hub.store.tasks.find(job_id=job.spec.job_id)
        wait_until(lambda: hub.store.tasks.get(task.task_id).state is TaskState.RUNNING, "run")
        password = network.files.users["bruno"]
        for victim in (agent.bus.settings.client_id, hub.bus.settings.client_id):
            settings = BusSettings(
                network.broker.host, network.broker.port, "bruno", password, victim
            )
            assert "Not authorized" in refused_login(settings)
        now = hub.store.tasks.get(task.task_id)
        assert now.state is TaskState.RUNNING and len(now.attempts) == 1
        assert agent.bus.counters().connects == 1 and hub.bus.counters().connects == 1
        assert agent.bus.connected and hub.bus.connected
    finally:
        network.stop()
