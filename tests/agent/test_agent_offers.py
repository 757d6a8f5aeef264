"""Offers decided by each machine's policy, answered by the maker, and hostile commands."""

from __future__ import annotations

import json
import time

import pytest
from agent_harness import machine_toml, new_id, offer
from agent_rig import RigFactory

from fabnet.bus import topics
from fabnet.bus.messages import TaskAccepted, TaskCancel, TaskDeclined
from fabnet.errors import NotFound

MACHINES = (
    machine_toml("pla")
    + machine_toml("abs", material="ABS", materials=("PLA",))
    + machine_toml("nightly", windows=("0 0 31 2 *",))  # 31 February: never open
    + machine_toml("open", windows=("* * * * *",))
    + machine_toml("asks", auto_accept=False)
)


@pytest.mark.parametrize(
    ("machine", "material", "est_s", "reason"),
    [
        ("pla", "PETG", 1800, "material PETG not loaded (PLA)"),
        ("pla", "PLA", 9.5 * 3600, "estimated 9.5 h exceeds max 8 h"),
        ("abs", "ABS", 1800, "material ABS not accepted by policy (PLA)"),
        ("nightly", "PLA", 1800, "outside availability window"),
    ],
)
def test_offer_declined_with_reason(
    make_rig: RigFactory, machine: str, material: str, est_s: float, reason: str
) -> None:
    rig = make_rig(MACHINES)
    task = new_id()
    rig.hub.send(offer(machine, task, material, est_s))
    declined = rig.hub.wait_for(TaskDeclined, task_id=task)
    assert (declined.machine, declined.reason) == (machine, reason)
    assert not rig.hub.messages(TaskAccepted, task_id=task)


def test_busy_machine_declines_a_second_offer_until_the_first_is_cancelled(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(MACHINES)
    first, second, third = new_id(), new_id(), new_id()
    rig.hub.send(offer("open", first))
    rig.hub.wait_for(TaskAccepted, task_id=first)
    rig.hub.send(offer("open", second))
    declined = rig.hub.wait_for(TaskDeclined, task_id=second)
    assert declined.reason == f"machine busy (task {first})"
    rig.hub.send(TaskCancel(machine="open", task_id=first, attempt=1))
    rig.hub.send(offer("open", third))
    rig.hub.wait_for(TaskAccepted, task_id=third)


def test_maker_answers_pending_offers(make_rig: RigFactory) -> None:
    rig = make_rig(MACHINES)
    yes, no = new_id(), new_id()
    rig.hub.send(offer("asks", yes))
    deadline = time.monotonic() + 5
    while not rig.agent.pending_offers() and time.monotonic() < deadline:
        time.sleep(0.02)
    [pending] = rig.agent.pending_offers()
    assert (pending.offer.machine, pending.offer.task_id) == ("asks", yes)
    saved = json.loads((rig.config.data_dir / "pending_offers.json").read_text())
    assert len(saved) == 1 and yes in saved[0]["payload"]
    assert not rig.hub.messages(TaskAccepted, task_id=yes)
    with pytest.raises(NotFound):
        rig.agent.decide("asks", "nosuchtask", True)
    with pytest.raises(NotFound):
        rig.agent.decide("nosuchmachine", yes, True)

    rig.agent.decide("asks", yes, accept=True)
    rig.hub.wait_for(TaskAccepted, task_id=yes)
    assert rig.agent.pending_offers() == []

    rig.hub.send(TaskCancel(machine="asks", task_id=yes, attempt=1))
    rig.hub.send(offer("asks", no))
    while not rig.agent.pending_offers() and time.monotonic() < deadline + 5:
        time.sleep(0.02)
    rig.agent.decide("asks", no, accept=False)
    declined = rig.hub.wait_for(TaskDeclined, task_id=no)
    assert declined.reason == "declined by the maker"


def test_hostile_commands_are_dropped_and_the_agent_keeps_working(make_rig: RigFactory) -> None:
    rig = make_rig(MACHINES)
    commands = topics.agent_commands(rig.agent_id)
    client = rig.hub.bus._client  # raw paho: the BusClient refuses to send invalid messages
    for payload in (b"not json", b"[]", b'{"v": 2}', json.dumps({"v": 1, "type": "task.offer"}).encode(),
                    b"x" * (256 * 1024 + 10)):  # fmt: skip
        client.publish(commands, payload, qos=1).wait_for_publish(5)
    rig.hub.send(offer("not-ours", new_id()))
    task = new_id()
    rig.hub.send(offer("pla", task))
    rig.hub.wait_for(TaskAccepted, task_id=task)
    assert rig.agent.dropped_commands == 1
    assert rig.agent.bus.counters().dropped_total >= 4
