"""The task state machine: every transition, idempotency, stale events, retries, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fabnet.core.events import (
    LeaseExpired,
    MachineWentOffline,
    OfferTimedOut,
    TaskAccepted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskDeclined,
    TaskEvent,
    TaskFailed,
    TaskOffered,
    TaskProgressed,
    TaskStarted,
)
from fabnet.core.lifecycle import apply
from fabnet.core.states import AttemptCause, IgnoreReason, TaskState, TransitionCause
from fabnet.core.tasks import Ignored, TaskSnapshot, Transition, expired_leases, timed_out_offers
from fabnet.errors import InvalidInput

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def step(task: TaskSnapshot, event: TaskEvent, now: datetime = T0) -> TaskSnapshot:
    out = apply(task, event, now)
    assert isinstance(out, Transition), out
    return out.task


def ignored(task: TaskSnapshot, event: TaskEvent, now: datetime = T0) -> IgnoreReason:
    out = apply(task, event, now)
    assert isinstance(out, Ignored), out
    return out.reason


def fresh(max_attempts: int = 3) -> TaskSnapshot:
    return TaskSnapshot(task_id="t1", job_id="j1", max_attempts=max_attempts)


def offered(machine: str = "m1", task: TaskSnapshot | None = None) -> TaskSnapshot:
    return step(task or fresh(), TaskOffered(machine_id=machine, offer_s=30))


def claimed(machine: str = "m1", task: TaskSnapshot | None = None) -> TaskSnapshot:
    t = offered(machine, task)
    return step(t, TaskAccepted(machine_id=machine, offer_no=t.offer_no, lease_s=60))


def running(machine: str = "m1", task: TaskSnapshot | None = None) -> TaskSnapshot:
    t = claimed(machine, task)
    t = step(t, TaskAssigned(machine_id=machine, offer_no=t.offer_no))
    return step(t, TaskStarted(machine_id=machine, offer_no=t.offer_no))


def test_happy_path_records_states_lease_and_attempt() -> None:
    t = offered()
    assert (t.state, t.machine_id, t.offer_no) == (TaskState.OFFERED, "m1", 1)
    assert t.offer_until == T0 + timedelta(seconds=30)
    out = apply(t, TaskAccepted(machine_id="m1", offer_no=1, lease_s=60), T0)
    assert isinstance(out, Transition)
    assert out.to_state is TaskState.CLAIMED and out.cause is TransitionCause.ACCEPTED
    assert out.task.lease_until == T0 + timedelta(seconds=60)
    assert out.attempt_started is not None and out.attempt_started.number == 1
    t = step(out.task, TaskAssigned(machine_id="m1", offer_no=1))
    assert t.state is TaskState.PREPARING
    t = step(t, TaskStarted(machine_id="m1", offer_no=1))
    assert t.state is TaskState.RUNNING
    later = T0 + timedelta(seconds=50)
    t = step(t, TaskProgressed(machine_id="m1", offer_no=1, fraction=0.5, lease_s=60), later)
    assert t.state is TaskState.RUNNING and t.progress == 0.5
    assert t.lease_until == later + timedelta(seconds=60)
    done = apply(
        t, TaskCompleted(machine_id="m1", offer_no=1, grams=12.5, machine_hours=1.5), later
    )
    assert isinstance(done, Transition)
    assert done.to_state is TaskState.DONE and done.completed is not None
    assert done.attempt_ended is not None and done.attempt_ended.cause is AttemptCause.DONE
    assert done.task.attempts[0].ended_at == later


def test_same_event_twice_changes_nothing() -> None:
    t = claimed()
    t = step(t, TaskStarted(machine_id="m1", offer_no=1))
    event = TaskCompleted(machine_id="m1", offer_no=1, grams=3, machine_hours=0.2)
    first = apply(t, event, T0)
    assert isinstance(first, Transition)
    again = apply(first.task, event, T0 + timedelta(hours=1))
    assert isinstance(again, Ignored) and again.reason is IgnoreReason.DUPLICATE
    progress = TaskProgressed(machine_id="m1", offer_no=1, fraction=0.3)
    t2 = step(t, progress)
    assert ignored(t2, progress, T0 + timedelta(minutes=5)) is IgnoreReason.DUPLICATE


def test_done_once_even_with_a_second_completion_id() -> None:
    t = running()
    t = step(t, TaskCompleted(machine_id="m1", offer_no=1, grams=1, machine_hours=1))
    other = TaskCompleted(machine_id="m1", offer_no=1, grams=1, machine_hours=1)
    assert ignored(t, other) is IgnoreReason.FINAL


def test_stale_progress_from_previous_attempt_is_ignored() -> None:
    t = running("m1")
    t = step(t, LeaseExpired(), T0 + timedelta(minutes=5))
    assert t.state is TaskState.QUEUED and t.machine_id is None
    late = TaskProgressed(machine_id="m1", offer_no=1, fraction=0.9)
    assert ignored(t, late) is IgnoreReason.STALE
    t = running("m1", t)  # the same machine gets it again under a new offer
    assert t.offer_no == 2
    assert ignored(t, late) is IgnoreReason.STALE
    old_done = TaskCompleted(machine_id="m1", offer_no=1, grams=1, machine_hours=1)
    assert ignored(t, old_done) is IgnoreReason.STALE
    assert ignored(t, TaskProgressed(machine_id="m2", offer_no=2, fraction=0.1)) is (
        IgnoreReason.STALE
    )


def test_out_of_order_completion_is_accepted_and_late_start_ignored() -> None:
    t = step(claimed(), TaskAssigned(machine_id="m1", offer_no=1))
    t = step(t, TaskCompleted(machine_id="m1", offer_no=1, grams=1, machine_hours=1))
    assert t.state is TaskState.DONE
    assert ignored(t, TaskStarted(machine_id="m1", offer_no=1)) is IgnoreReason.FINAL


def test_no_completion_before_the_gcode_is_assigned() -> None:
    # issue 13: task.completed straight after task.accepted credited a run that never was
    done = TaskCompleted(machine_id="m1", offer_no=1, grams=1, machine_hours=1)
    assert ignored(claimed(), done) is IgnoreReason.WRONG_STATE


def test_wrong_state_events_are_ignored() -> None:
    t = fresh()
    assert ignored(t, OfferTimedOut()) is IgnoreReason.WRONG_STATE
    assert ignored(t, LeaseExpired()) is IgnoreReason.WRONG_STATE
    r = running()
    assert ignored(r, TaskOffered(machine_id="m2")) is IgnoreReason.WRONG_STATE
    assert ignored(r, TaskAccepted(machine_id="m1", offer_no=1)) is IgnoreReason.WRONG_STATE


def test_decline_and_offer_timeout_requeue_without_using_an_attempt() -> None:
    t = offered()
    q = step(t, TaskDeclined(machine_id="m1", offer_no=1, reason="busy"))
    assert q.state is TaskState.QUEUED and q.attempts == () and q.machine_id is None
    t = offered("m2", q)
    assert ignored(t, OfferTimedOut(), T0 + timedelta(seconds=10)) is IgnoreReason.NOT_DUE
    q = step(t, OfferTimedOut(), T0 + timedelta(seconds=30))
    assert q.state is TaskState.QUEUED and q.attempts == ()
    assert step(offered("m3", q), MachineWentOffline(machine_id="m3")).state is TaskState.QUEUED


def test_lease_expiry_and_machine_offline_requeue_each_leased_state() -> None:
    for make in (claimed, running):
        t = make("m1")
        assert ignored(t, LeaseExpired(), T0 + timedelta(seconds=59)) is IgnoreReason.NOT_DUE
        q = step(t, LeaseExpired(), T0 + timedelta(seconds=60))
        assert q.state is TaskState.QUEUED
        assert q.attempts[-1].cause is AttemptCause.LEASE_EXPIRED
        off = step(make("m1"), MachineWentOffline(machine_id="m1"))
        assert off.state is TaskState.QUEUED
        assert off.attempts[-1].cause is AttemptCause.MACHINE_OFFLINE
        assert ignored(make("m1"), MachineWentOffline(machine_id="m9")) is IgnoreReason.STALE
    prep = claimed()
    prep = step(prep, TaskAssigned(machine_id="m1", offer_no=1))
    assert step(prep, LeaseExpired(), T0 + timedelta(minutes=2)).state is TaskState.QUEUED


def test_progress_extends_lease_so_expiry_is_not_due() -> None:
    t = running()
    t = step(
        t, TaskProgressed(machine_id="m1", offer_no=1, fraction=0.2), T0 + timedelta(seconds=50)
    )
    assert expired_leases([t], T0 + timedelta(seconds=70)) == []
    assert ignored(t, LeaseExpired(), T0 + timedelta(seconds=70)) is IgnoreReason.NOT_DUE
    assert expired_leases([t], T0 + timedelta(seconds=110)) == ["t1"]


def test_failures_retry_until_attempts_are_exhausted() -> None:
    t = fresh(max_attempts=2)
    t = running("m1", t)
    out = apply(t, TaskFailed(machine_id="m1", offer_no=1, reason="nozzle clog"), T0)
    assert isinstance(out, Transition)
    assert out.to_state is TaskState.QUEUED and out.cause is TransitionCause.ATTEMPT_FAILED
    assert out.attempt_ended is not None and out.attempt_ended.detail == "nozzle clog"
    t = running("m2", out.task)
    out = apply(t, TaskFailed(machine_id="m2", offer_no=2), T0)
    assert isinstance(out, Transition)
    assert out.to_state is TaskState.FAILED and out.cause is TransitionCause.ATTEMPTS_EXHAUSTED
    assert [(a.machine_id, a.cause) for a in out.task.attempts] == [
        ("m1", AttemptCause.FAILED),
        ("m2", AttemptCause.FAILED),
    ]
    assert ignored(out.task, TaskOffered(machine_id="m3")) is IgnoreReason.FINAL


def test_lease_expiry_on_last_attempt_fails_the_task() -> None:
    t = claimed("m1", fresh(max_attempts=1))
    assert step(t, LeaseExpired(), T0 + timedelta(hours=1)).state is TaskState.FAILED


def test_cancel_from_every_non_final_state() -> None:
    prep = step(claimed(), TaskAssigned(machine_id="m1", offer_no=1))
    for t in (fresh(), offered(), claimed(), prep, running()):
        out = apply(t, TaskCancelled(reason="requester"), T0)
        assert isinstance(out, Transition) and out.to_state is TaskState.CANCELLED
        if t.current_attempt is not None:
            assert out.attempt_ended is not None
            assert out.attempt_ended.cause is AttemptCause.CANCELLED
    done = step(running(), TaskCompleted(machine_id="m1", offer_no=1, grams=1, machine_hours=1))
    assert ignored(done, TaskCancelled()) is IgnoreReason.FINAL


def test_timeout_queries_and_bad_inputs() -> None:
    t = offered()
    assert timed_out_offers([t, fresh()], T0 + timedelta(seconds=31)) == ["t1"]
    with pytest.raises(InvalidInput, match="naive"):
        apply(t, OfferTimedOut(), datetime(2024, 1, 1))
    with pytest.raises(InvalidInput, match="fraction"):
        TaskProgressed(machine_id="m1", offer_no=1, fraction=1.5)
    with pytest.raises(InvalidInput, match="lease_s"):
        TaskAccepted(machine_id="m1", offer_no=1, lease_s=0)
    assert len({TaskCancelled().event_id for _ in range(100)}) == 100
