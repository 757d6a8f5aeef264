"""``task.failed`` carries an optional reason code (issue 10, item 4): an older agent's message
without it still parses, a code fabnet does not know is rejected like any bad field."""

from __future__ import annotations

import json

import pytest

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.schema import DropReason, InvalidMessage

EVENTS = topics.machine_events("ada", "mk3s")


def _failed(**extra: object) -> bytes:
    body = {
        "v": 1,
        "type": "task.failed",
        "id": "a" * 32,
        "ts": "2026-01-02T03:04:05Z",
        "machine": "mk3s",
        "task_id": "t" * 32,
        "attempt": 1,
        "reason": "halted",
        **extra,
    }
    return json.dumps(body).encode()  # fmt: skip


def test_a_failure_without_a_cause_still_parses() -> None:
    got = m.decode(EVENTS, _failed())
    assert isinstance(got, m.TaskFailed) and got.cause is None


def test_a_known_cause_round_trips() -> None:
    got = m.decode(EVENTS, _failed(cause="machine_reset"))
    assert isinstance(got, m.TaskFailed) and got.cause is m.FailureCause.MACHINE_RESET
    assert m.decode(EVENTS, m.encode(got)) == got


@pytest.mark.parametrize("bad", ["on_fire", 3, "", ["thermal_fault"]])
def test_an_unknown_cause_is_rejected_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidMessage, match="cause") as caught:
        m.decode(EVENTS, _failed(cause=bad))
    assert caught.value.reason is DropReason.BAD_FIELD
