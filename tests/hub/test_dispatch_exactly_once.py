"""Exactly once, hub side, on real peers (Mosquitto, PostgreSQL, ``fabnet hub`` as a process):
a completion the hub received but had not committed when it was SIGKILLed is applied once by
the next hub — the broker re-delivers it because it was never PUBACKed — and only then is it
acknowledged to the agent with ``events.ack``.

The hub is caught between receipt and commit by a row lock this test holds on the task from its
own PostgreSQL transaction: the hub's ``apply_events`` waits on it, and is killed waiting."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.topics import Topic
from fabnet.core.states import TaskState
from fabnet.hub.rest_client import HubClient
from fabnet.lifetime import tied_popen
from fabnet.sim.makers import NetworkFiles, SimMachine, SimMaker, write_network
from fabnet.store import Store

AGENT, MACHINE = "ada", "mk3s-1"
LEASE_S = 120.0  # long: nothing may expire while the test holds the hub


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def http_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


class Agent:
    """The agent ``ada`` played by the test: it sends each event once and never re-sends."""

    def __init__(self, files: NetworkFiles, broker_port: int) -> None:
        settings = BusSettings("127.0.0.1", broker_port, AGENT, files.users[AGENT], AGENT)
        self.commands: queue.Queue[m.Message] = queue.Queue()
        self.bus = BusClient(settings)
        self.bus.subscribe(topics.agent_commands(AGENT), self._on_command)

    def _on_command(self, topic: Topic, message: m.Message) -> None:
        self.commands.put(message)

    def send(self, event: m.Message) -> None:
        assert self.bus.publish(topics.machine_events(AGENT, MACHINE), event).wait(10)

    def idle(self) -> None:
        caps = m.Capabilities(
            profile="prusa_mk3s",
            kind=m.MachineKind.FDM,
            volume_mm=m.Xyz(x=250.0, y=210.0, z=210.0),
            nozzle_mm=0.4,
            materials=("PLA",),
        )
        status = m.MachineStatus(
            machine=MACHINE, state=m.MachineState.IDLE, capabilities=caps, materials_loaded=("PLA",)
        )
        self.bus.publish_status(topics.machine_status(AGENT, MACHINE), status).wait(10)

    def next(self, kind: type[m.Message], timeout_s: float = 120) -> m.Message:
        deadline = time.monotonic() + timeout_s
        while True:
            command = self.commands.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(command, kind):
                return command

    def acked_ids(self, wait_s: float) -> set[str]:
        ids: set[str] = set()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                command = self.commands.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(command, m.EventsAck):
                ids.update(command.ids)
        return ids


def spawn_hub(files: NetworkFiles, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        args = [sys.executable, "-m", "fabnet.cli", "-v", "hub", "--config", str(files.hub_config)]
        return tied_popen(args, stdout=out, stderr=out, env=env)


def lock_waiters(url: str) -> int:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_completion_received_but_not_committed_is_applied_once_after_a_hub_kill(
    tmp_path: Path, pg_url: str
) -> None:
    broker_port, http_port = free_port(), free_port()
    maker = SimMaker(AGENT, (SimMachine(MACHINE, "prusa_mk3s", "PLA", ("PLA",)),))
    files = write_network(tmp_path, broker_port, (maker,), http_port=http_port, lease_s=LEASE_S,
                          offer_timeout_s=60.0, sweep_interval_s=0.3,
                          database_url=pg_url)  # fmt: skip
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users)
    broker.start()
    hubs: list[subprocess.Popen[bytes]] = []
    agent = Agent(files, broker_port)
    store = Store(pg_url)
    try:
        hubs.append(spawn_hub(files, tmp_path / "hub.log"))
        wait_until(lambda: http_up(http_port), "the hub to answer HTTP")
        agent.bus.start()
        assert agent.bus.wait_connected(10), agent.bus.last_error
        agent.idle()
        client = HubClient(f"http://127.0.0.1:{http_port}", files.api_token)
        client.call("POST", "/jobs", {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA"})
        offer = agent.next(m.TaskOffer)
        assert isinstance(offer, m.TaskOffer)
        ids: dict[str, Any] = {
            "machine": MACHINE,
            "task_id": offer.task_id,
            "attempt": offer.attempt,
        }
        agent.send(m.TaskAccepted(**ids))
        assign = agent.next(m.TaskAssign)
        assert isinstance(assign, m.TaskAssign)
        started = m.TaskStarted(**ids)
        agent.send(started)
        wait_until(lambda: store.tasks.get(offer.task_id).state is TaskState.RUNNING, "running")
        assert started.id in agent.acked_ids(wait_s=1.0)  # committed, so acknowledged

        done = m.TaskCompleted(**ids, grams=2.0, machine_s=60.0, sha256=assign.sha256)
        holder = create_engine(pg_url)
        with holder.connect() as conn:
            conn.execute(
                text("SELECT id FROM tasks WHERE id = :t FOR UPDATE"), {"t": offer.task_id}
            )
            agent.send(done)  # PUBACKed by the broker; the hub receives it and waits on our lock
            wait_until(lambda: lock_waiters(pg_url) >= 1, "the hub to wait on the task's row")
            hubs[0].send_signal(signal.SIGKILL)
            hubs[0].wait(10)
            conn.rollback()
        holder.dispose()
        assert store.tasks.get(offer.task_id).state is TaskState.RUNNING  # it never committed
        assert done.id not in agent.acked_ids(wait_s=0.5)

        hubs.append(spawn_hub(files, tmp_path / "hub.log"))  # same client id: same session
        wait_until(lambda: store.tasks.get(offer.task_id).state is TaskState.DONE,
                   "the re-delivered completion to be applied")  # fmt: skip
        assert done.id in agent.acked_ids(wait_s=2.0)
        entries = [e for e in store.ledger.entries() if e.task_id == offer.task_id]
        assert len(entries) == 1 and entries[0].grams == 2.0
        task = store.tasks.get(offer.task_id)
        assert len(task.attempts) == 1 and task.offer_no == 1
    finally:
        agent.bus.stop()
        for hub in hubs:
            if hub.poll() is None:
                hub.send_signal(signal.SIGTERM)
                try:
                    hub.wait(10)
                except subprocess.TimeoutExpired:
                    hub.kill()
        store.close()
        broker.stop()
