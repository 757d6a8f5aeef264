"""Every v1 message round-trips; hostile payloads are rejected with the right reason, never crash."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from bus_samples import AGENT, MACHINE, SHA, TASK, every_message

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.schema import DropReason, InvalidMessage
from fabnet.errors import InvalidInput

EVENTS = topics.machine_events(AGENT, MACHINE)


def test_there_is_a_sample_of_every_type() -> None:
    assert {msg.TYPE for _, msg in every_message()} == set(m.MESSAGE_TYPES)


@pytest.mark.parametrize(("topic", "msg"), every_message(), ids=lambda x: getattr(x, "TYPE", ""))
def test_round_trip(topic: str, msg: m.Message) -> None:
    data = m.encode(msg)
    obj = json.loads(data)
    assert (obj["v"], obj["type"], obj["id"]) == (1, msg.TYPE, msg.id)
    assert obj["ts"].endswith("Z")
    assert m.decode(topic, data) == msg


def test_envelope_ids_are_unique_and_times_utc() -> None:
    a, b = (
        m.TaskStarted(machine="m", task_id="t", attempt=1),
        m.TaskStarted(machine="m", task_id="t", attempt=1),
    )
    assert a.id != b.id and len(a.id) == 32
    assert a.ts.utcoffset() is not None and a.ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    fresh = a.restamped()
    assert fresh.id != a.id and fresh.ts >= a.ts and fresh.task_id == a.task_id


def valid() -> dict[str, Any]:
    return json.loads(
        m.encode(
            m.TaskCompleted(
                machine=MACHINE, task_id=TASK, attempt=1, grams=3.5, machine_s=60, sha256=SHA
            )
        )
    )


def with_(**changes: Any) -> bytes:
    obj = valid()
    for key, value in changes.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj).encode()


HOSTILE: list[tuple[str, bytes, DropReason]] = [
    ("empty", b"", DropReason.NOT_JSON),
    ("not json", b"hello", DropReason.NOT_JSON),
    (
        "truncated",
        m.encode(m.TaskStarted(machine=MACHINE, task_id=TASK, attempt=1))[:-3],
        DropReason.NOT_JSON,
    ),
    ("invalid utf-8", b'{"v":1,"type":"task.started","x":"\xff\xfe"}', DropReason.NOT_UTF8),
    ("array", b"[1,2,3]", DropReason.NOT_OBJECT),
    ("string", b'"task.started"', DropReason.NOT_OBJECT),
    ("null", b"null", DropReason.NOT_OBJECT),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, DropReason.NOT_JSON),
    ("deep object", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, DropReason.NOT_JSON),
    ("300 KiB", with_(reason="x" * 300 * 1024), DropReason.TOO_LARGE),
    ("NaN grams", with_(grams=float("nan")), DropReason.NOT_JSON),
    ("Infinity", b'{"v":1,"grams":Infinity}', DropReason.NOT_JSON),
    ("duplicate key", b'{"v":1,"v":1}', DropReason.NOT_JSON),
    ("huge int digits", b'{"v":' + b"9" * 5000 + b"}", DropReason.NOT_JSON),
    ("no v", with_(v=...), DropReason.BAD_VERSION),
    ("v 2", with_(v=2), DropReason.BAD_VERSION),
    ("v true", with_(v=True), DropReason.BAD_VERSION),
    ("v 1.0", with_(v=1.0), DropReason.BAD_VERSION),
    ("v string", with_(v="1"), DropReason.BAD_VERSION),
    ("unknown type", with_(type="task.exploded"), DropReason.UNKNOWN_TYPE),
    ("type not str", with_(type=["task.completed"]), DropReason.UNKNOWN_TYPE),
    ("no type", with_(type=...), DropReason.UNKNOWN_TYPE),
    ("command on events", with_(type="task.cancel"), DropReason.WRONG_TOPIC),
    ("status on events", with_(type="agent.status"), DropReason.WRONG_TOPIC),
    ("no id", with_(id=...), DropReason.MISSING_FIELD),
    ("no ts", with_(ts=...), DropReason.MISSING_FIELD),
    ("no grams", with_(grams=...), DropReason.MISSING_FIELD),
    ("no machine", with_(machine=...), DropReason.MISSING_FIELD),
    ("bad id", with_(id="not-a-uuid"), DropReason.BAD_FIELD),
    ("naive ts", with_(ts="2024-01-01T00:00:00"), DropReason.BAD_FIELD),
    ("ts garbage", with_(ts="yesterday"), DropReason.BAD_FIELD),
    ("ts number", with_(ts=1700000000), DropReason.BAD_FIELD),
    ("attempt bool", with_(attempt=True), DropReason.BAD_FIELD),
    ("attempt float", with_(attempt=1.0), DropReason.BAD_FIELD),
    ("attempt string", with_(attempt="1"), DropReason.BAD_FIELD),
    ("attempt zero", with_(attempt=0), DropReason.BAD_FIELD),
    ("attempt huge", with_(attempt=10**30), DropReason.BAD_FIELD),
    ("grams negative", with_(grams=-1), DropReason.BAD_FIELD),
    ("grams 1e308", with_(grams=1e308), DropReason.BAD_FIELD),
    ("grams huge int", with_(grams=10**400), DropReason.BAD_FIELD),
    ("grams string", with_(grams="3.5"), DropReason.BAD_FIELD),
    ("grams bool", with_(grams=False), DropReason.BAD_FIELD),
    ("grams null", with_(grams=None), DropReason.BAD_FIELD),
    ("grams object", with_(grams={"$gt": 0}), DropReason.BAD_FIELD),
    ("sha upper", with_(sha256=SHA.upper()), DropReason.BAD_FIELD),
    ("sha short", with_(sha256="ab"), DropReason.BAD_FIELD),
    ("task id slash", with_(task_id="a/b"), DropReason.BAD_FIELD),
    ("task id wildcard", with_(task_id="#"), DropReason.BAD_FIELD),
    ("lone surrogate", with_(type="task.failed", reason="\ud800"), DropReason.BAD_FIELD),
    ("other machine", with_(machine="mk3s-2"), DropReason.MACHINE_MISMATCH),
    ("machine list", with_(machine=[MACHINE]), DropReason.BAD_FIELD),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_payload_is_rejected_with_its_reason(payload: bytes, reason: DropReason) -> None:
    with pytest.raises(InvalidMessage) as info:
        m.decode(EVENTS, payload)
    assert info.value.reason is reason, str(info.value)
    assert isinstance(info.value, InvalidInput)


def test_errors_name_the_field_and_value() -> None:
    with pytest.raises(InvalidMessage, match=r"attempt must be an integer, got True"):
        m.decode(EVENTS, with_(attempt=True))
    with pytest.raises(InvalidMessage, match=r"grams must be 0\.\.1e\+12, got -1"):
        m.decode(EVENTS, with_(grams=-1))
    status = json.loads(m.encode(every_message()[1][1]))
    status["capabilities"]["volume_mm"]["z"] = "tall"
    with pytest.raises(InvalidMessage, match=r"capabilities\.volume_mm\.z must be a number"):
        m.decode(topics.machine_status(AGENT, MACHINE), json.dumps(status).encode())


def test_unknown_keys_are_ignored() -> None:
    msg = m.decode(EVENTS, with_(extra={"nested": [1, 2, {"deep": None}]}, color="blue"))
    assert isinstance(msg, m.TaskCompleted) and msg.grams == 3.5


def test_ints_are_accepted_for_floats_and_offsets_become_utc() -> None:
    msg = m.decode(EVENTS, with_(grams=4, ts="2024-05-06T09:00:00+02:00"))
    assert isinstance(msg, m.TaskCompleted)
    assert msg.grams == 4.0 and isinstance(msg.grams, float)
    assert msg.ts == datetime.fromisoformat("2024-05-06T07:00:00+00:00")


def test_encode_refuses_what_a_receiver_would_drop() -> None:
    with pytest.raises(InvalidInput, match="grams must be a finite number"):
        m.encode(
            m.TaskCompleted(
                machine=MACHINE,
                task_id=TASK,
                attempt=1,
                grams=float("inf"),
                machine_s=1,
                sha256=SHA,
            )
        )
    with pytest.raises(InvalidInput, match="machine must be"):
        m.encode(m.TaskStarted(machine="a/b", task_id=TASK, attempt=1))
    many = tuple("€" * 64 for _ in range(1024))  # 192 bytes each in UTF-8
    status = every_message()[1][1]
    assert isinstance(status, m.MachineStatus)
    big = replace(
        status, materials_loaded=many, capabilities=replace(status.capabilities, materials=many)
    )
    with pytest.raises(InvalidInput, match="over the 262144 limit"):
        m.encode(big)


def test_random_mutations_never_escape_as_anything_but_invalid_message() -> None:
    rng = random.Random(1234)
    seeds = [m.encode(msg) for _, msg in every_message()]
    topics_all = [t for t, _ in every_message()]
    outcomes = {"ok": 0, "rejected": 0}
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            action = rng.random()
            if action < 0.4:
                data[pos] = rng.randrange(256)
            elif action < 0.7:
                del data[pos : pos + rng.randint(1, 8)]
            else:
                data[pos:pos] = rng.choice([b"[", b"{", b'"', b"-1e999", b"null", b",", b"true"])
        try:
            m.decode(rng.choice(topics_all), bytes(data))
            outcomes["ok"] += 1
        except InvalidMessage:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 2000, outcomes
