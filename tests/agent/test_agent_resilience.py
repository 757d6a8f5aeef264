"""Nothing is lost: a broker killed mid-task, an agent restarted with unconfirmed results,
and an agent process killed outright (its Last Will marks it offline)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent_harness import ArtifactServer, assign, cube_gcode, machine_toml, new_id, offer
from agent_rig import FAST_FETCH, Rig, RigFactory, build_rig

from fabnet.agent.process import Agent
from fabnet.bus import topics
from fabnet.bus.messages import AgentState, AgentStatus, TaskAccepted, TaskCompleted, TaskStarted

REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


def test_completion_during_a_broker_outage_arrives_once_per_message_id(
    mosquitto_fresh: Any, tmp_path: Path, artifacts: ArtifactServer
) -> None:
    rig = build_rig(mosquitto_fresh, tmp_path, artifacts, machine_toml("m", speed=500.0))
    try:
        body = cube_gcode()
        task = new_id()
        rig.hub.send(offer("m", task))
        rig.hub.wait_for(TaskAccepted, task_id=task)
        rig.hub.send(assign("m", task, artifacts.add(f"{task}.gcode", body), body))
        rig.hub.wait_for(TaskStarted, task_id=task)
        broker = mosquitto_fresh.broker
        broker.save()  # the hub's subscription is on disk, as it would be after a while
        broker.kill()
        journal = rig.config.data_dir / "journal.jsonl"
        wait_until(lambda: "task.completed" in journal.read_text(), 10, "completion journaled")
        time.sleep(0.5)  # the agent keeps running without a broker
        broker.start()
        done = rig.hub.wait_for(TaskCompleted, timeout_s=20, task_id=task)
        wait_until(lambda: rig.agent.outbox.unconfirmed() == 0, 10, "completion confirmed")
        time.sleep(2.5)  # room for any re-publication to arrive
        ids = {m.id for m in rig.hub.messages(TaskCompleted, task_id=task)}
        assert ids == {done.id}
        assert rig.agent.journal.pending() == []
        assert rig.agent.bus.counters().connects >= 2
    finally:
        rig.agent.stop(timeout_s=2)
        rig.hub.stop()


def test_restarted_agent_republishes_unconfirmed_journal_entries(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("m"), start=False)
    # the process journaled a completion and died before the broker acknowledged it
    lost = TaskCompleted(machine="m", task_id=new_id(), attempt=1, grams=3.9, machine_s=60.0,
                         sha256="ab" * 32)  # fmt: skip
    rig.agent.journal.record(topics.machine_events(rig.agent_id, "m"), lost)
    restarted = Agent(rig.config, fetch=FAST_FETCH)
    restarted.start()
    try:
        got = rig.hub.wait_for(TaskCompleted, task_id=lost.task_id)
        assert got == lost
        wait_until(lambda: restarted.journal.pending() == [], 5, "journal confirmed")
    finally:
        restarted.stop(timeout_s=2)
    assert Agent(rig.config).journal.pending() == []


def start_agent_process(config_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fabnet.agent", "--config", str(config_path)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def start_and_signal(rig: Rig, sig: signal.Signals, exit_code: int) -> None:
    """Start the agent as a process, wait until it is online, signal it, and wait for the
    hub to see it offline (sent by the agent on SIGTERM, by the broker's Last Will on SIGKILL)."""
    statuses = rig.hub.messages
    before = len(statuses(AgentStatus))
    proc = start_agent_process(rig.config_path)
    try:
        online = rig.hub.wait_for(AgentStatus, timeout_s=15, state=AgentState.ONLINE,
                                  where=lambda m: statuses(AgentStatus).index(m) >= before)  # fmt: skip
        assert online.machines == ("m",)
        proc.send_signal(sig)
        assert proc.wait(10) == exit_code, proc.stderr.read() if proc.stderr else ""
        # a Last Will is stamped when its connection was made: order by arrival instead
        seen_online = statuses(AgentStatus).index(online)
        offline = rig.hub.wait_for(AgentStatus, timeout_s=5, state=AgentState.OFFLINE,
                                   where=lambda m: statuses(AgentStatus).index(m) > seen_online)  # fmt: skip
        assert offline.machines == ("m",)
    finally:
        proc.kill()
        proc.wait()


def test_agent_process_stops_cleanly_on_sigterm_and_its_last_will_fires_on_sigkill(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(machine_toml("m"), start=False)
    start_and_signal(rig, signal.SIGTERM, 0)
    start_and_signal(rig, signal.SIGKILL, -signal.SIGKILL)
