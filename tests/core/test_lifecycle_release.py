"""A task handed back by a stopping agent (``TaskReleased``): queued at once, the attempt ends
as ``released`` and does not count against ``max_attempts``; a late or repeated hand-back of an
older offer changes nothing."""

from __future__ import annotations

from test_lifecycle import T0, claimed, fresh, ignored, running, step

from fabnet.bus import messages as msg
from fabnet.core.events import TaskFailed, TaskReleased
from fabnet.core.lifecycle import apply
from fabnet.core.states import AttemptCause, IgnoreReason, TaskState, TransitionCause
from fabnet.core.tasks import Transition
from fabnet.hub.translate import core_event


def test_released_running_task_is_queued_without_using_an_attempt() -> None:
    t = running("m1", fresh(max_attempts=1))
    out = apply(t, TaskReleased(machine_id="m1", offer_no=t.offer_no, reason="agent stopped"), T0)
    assert isinstance(out, Transition) and out.cause is TransitionCause.RELEASED
    assert out.task.state is TaskState.QUEUED and out.task.machine_id is None
    assert out.attempt_ended is not None and out.attempt_ended.cause is AttemptCause.RELEASED
    # one attempt allowed, one released: a real failure on the next machine is the one counted
    t = running("m2", out.task)
    t = step(t, TaskFailed(machine_id="m2", offer_no=t.offer_no, reason="jam"))
    assert t.state is TaskState.FAILED


def test_a_claimed_task_can_be_released_and_a_stale_release_is_ignored() -> None:
    t = claimed("m1")
    old_offer = t.offer_no
    t = step(t, TaskReleased(machine_id="m1", offer_no=old_offer))
    assert t.state is TaskState.QUEUED
    t = claimed("m1", t)  # offered to the same machine again after it came back
    assert ignored(t, TaskReleased(machine_id="m1", offer_no=old_offer)) is IgnoreReason.STALE


def test_the_hub_reads_a_task_failed_with_the_released_prefix_as_a_release() -> None:
    failed = msg.TaskFailed(machine="m1", task_id="t1", attempt=2,
                            reason=msg.TASK_RELEASED_PREFIX + "agent stopped")  # fmt: skip
    released = core_event(failed, "ada/m1", 60.0)
    assert isinstance(released, TaskReleased)
    assert released.reason == "agent stopped" and released.event_id == failed.id
    plain = core_event(msg.TaskFailed(machine="m1", task_id="t1", attempt=2, reason="jam"),
                       "ada/m1", 60.0)  # fmt: skip
    assert isinstance(plain, TaskFailed)
