"""Issue 8, defect 4: stopping an agent mid-task leaves the printer safe (heaters off, nothing
printing) and hands the task back, which the hub queues again at once without counting a
failed attempt; ``--drain`` finishes the running task first and takes no new one."""

from __future__ import annotations

import signal
from collections.abc import Callable

from stop_rig import StopRig, running, safe, stop_rig_factory, wait_until

from fabnet.core.states import AttemptCause, TaskState

__all__ = ["stop_rig_factory"]

RigMaker = Callable[[float], StopRig]

SLOW = 20.0  # a 20 mm cube takes minutes: the task is surely running when the test stops it
FAST = 400.0  # the same cube in seconds: a drained task finishes


def assert_handed_back(rig: StopRig, job_id: str) -> None:
    wait_until(lambda: rig.task(job_id).state is TaskState.QUEUED, 30, "the task to be queued")
    task = rig.task(job_id)
    (attempt,) = task.attempts
    assert attempt.cause is AttemptCause.RELEASED, attempt
    assert "agent stopped" in attempt.detail
    state = rig.state()
    assert state["files_completed"] == 0


def test_stopping_an_agent_mid_task_makes_the_printer_safe_and_hands_the_task_back(
    stop_rig_factory: RigMaker,
) -> None:
    rig = stop_rig_factory(SLOW)
    agent = rig.start_agent()
    job_id = rig.submit()
    wait_until(lambda: running(rig, job_id), 60, "the task to run and the printer to heat")
    agent.stop()  # what run_agent does on SIGTERM or SIGINT
    rig.agents.remove(agent)
    wait_until(lambda: safe(rig), 30, "heater targets 0 and the printer idle")
    assert_handed_back(rig, job_id)
    assert agent.outbox.unconfirmed() == 0, "the hand-back was delivered before disconnecting"


def test_sigterm_to_a_fabnet_agent_process_makes_the_printer_safe(
    stop_rig_factory: RigMaker,
) -> None:
    rig = stop_rig_factory(SLOW)
    proc = rig.spawn_agent()
    job_id = rig.submit()
    wait_until(lambda: running(rig, job_id), 60, "the task to run and the printer to heat")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, rig.agent_log()
    assert rig.state()["hotend_target_c"] == 0 and rig.state()["bed_target_c"] == 0
    wait_until(lambda: safe(rig), 30, "the printer idle (its last safe-stop moves done)")
    assert_handed_back(rig, job_id)


def test_drain_finishes_the_running_task_then_exits_and_takes_no_new_one(
    stop_rig_factory: RigMaker,
) -> None:
    rig = stop_rig_factory(FAST)
    proc = rig.spawn_agent("--drain")
    first = rig.submit()
    wait_until(lambda: running(rig, first), 60, "the first task to run")
    proc.send_signal(signal.SIGTERM)
    second = rig.submit()
    assert proc.wait(timeout=120) == 0, rig.agent_log()
    assert rig.task(first).state is TaskState.DONE, rig.agent_log()
    state = rig.state()
    assert state["files_completed"] == 1 and state["hotend_target_c"] == 0
    wait_until(lambda: rig.task(second).state is TaskState.QUEUED, 30, "the second task queued")
    assert all(a.cause is not AttemptCause.DONE for a in rig.task(second).attempts)
