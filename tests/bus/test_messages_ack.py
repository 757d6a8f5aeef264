"""events.ack (issue 9): the hub's acknowledgement of committed events, bounded and strict."""

from __future__ import annotations

import json

import pytest
from bus_samples import AGENT, MACHINE, TASK

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.schema import DropReason, InvalidMessage
from fabnet.errors import InvalidInput

COMMANDS = topics.agent_commands(AGENT)


def payload(ids: object) -> bytes:
    obj = json.loads(m.encode(m.EventsAck(ids=(m.new_message_id(),))))
    obj["ids"] = ids
    return json.dumps(obj).encode()


def test_an_ack_of_500_ids_round_trips_on_the_commands_topic() -> None:
    ack = m.EventsAck(ids=tuple(m.new_message_id() for _ in range(m.MAX_ACK_IDS)))
    assert m.decode(COMMANDS, m.encode(ack)) == ack
    assert m.MAX_ACK_IDS == 500


def test_the_ack_names_the_event_ids_it_answers() -> None:
    event = m.TaskCompleted(
        machine=MACHINE, task_id=TASK, attempt=1, grams=1, machine_s=2, sha256="a" * 64
    )
    ack = m.decode(COMMANDS, m.encode(m.EventsAck(ids=(event.id,))))
    assert isinstance(ack, m.EventsAck) and ack.ids == (event.id,)


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([], r"ids must hold 1\.\.500 items, got 0"),
        ([m.new_message_id() for _ in range(501)], r"ids must hold 1\.\.500 items, got 501"),
        (["not-an-id"], r"ids\[0\] must be a UUID"),
        ([m.new_message_id(), "x" * 5000], r"ids\[1\] must be"),
        ([7], r"ids\[0\] must be a string"),
        ("abc", r"ids must be a list"),
        (None, r"ids must be a list"),
    ],
)
def test_bad_id_lists_are_refused_naming_the_problem(ids: object, match: str) -> None:
    with pytest.raises(InvalidMessage, match=match) as info:
        m.decode(COMMANDS, payload(ids))
    assert info.value.reason is DropReason.BAD_FIELD


def test_the_sender_learns_of_a_bad_ack_before_it_is_sent() -> None:
    with pytest.raises(InvalidInput, match=r"events\.ack: ids must hold 1\.\.500 items, got 0"):
        m.encode(m.EventsAck(ids=()))


def test_an_ack_does_not_belong_on_an_events_topic() -> None:
    with pytest.raises(InvalidMessage) as info:
        m.decode(
            topics.machine_events(AGENT, MACHINE), m.encode(m.EventsAck(ids=(m.new_message_id(),)))
        )
    assert info.value.reason is DropReason.WRONG_TOPIC


def test_the_moving_events_are_the_five_that_change_a_task() -> None:
    assert {c.TYPE for c in m.MOVING_EVENTS} == {
        "task.accepted",
        "task.declined",
        "task.started",
        "task.completed",
        "task.failed",
    }
