"""Issue 9: the broker saves on every change, so messages queued for an offline subscriber (a
hub or agent in a persistent session) survive a broker SIGKILL — no ``save()`` beforehand."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.client import BusClient
from fabnet.bus.mosquitto_conf import config_text
from fabnet.bus.topics import Topic

if TYPE_CHECKING:
    from conftest import BrokerHandle


@contextmanager
def running(client: BusClient) -> Iterator[BusClient]:
    client.start()
    try:
        assert client.wait_connected(20), client.last_error
        yield client
    finally:
        client.stop()


def test_the_config_saves_after_every_change(tmp_path: Path) -> None:
    lines = config_text(tmp_path, 1883).splitlines()
    assert "persistence true" in lines
    assert "autosave_on_changes true" in lines and "autosave_interval 1" in lines
    assert "autosave_interval 5" in config_text(tmp_path, 1883, autosave_changes=5).splitlines()


def test_messages_queued_for_an_offline_session_survive_a_broker_sigkill(
    mosquitto_fresh: BrokerHandle,
) -> None:
    handle, broker = mosquitto_fresh, mosquitto_fresh.broker
    inbox: queue.Queue[m.Message] = queue.Queue()

    def to_agent(topic: Topic, msg: m.Message) -> None:
        inbox.put(msg)

    commands = topics.agent_commands("dave")
    agent_settings = handle.settings("dave")  # one client id: the same session after restart
    first = BusClient(agent_settings)
    first.subscribe(commands, to_agent)
    with running(first):
        pass  # subscribed in a persistent session, then gone
    sent = [m.TaskCancel(machine="m1", task_id=f"t{i}", attempt=1) for i in range(5)]
    with running(BusClient(handle.settings("hub"))) as hub:
        for cmd in sent:
            assert hub.publish(commands, cmd).wait(5)
    # Mosquitto saves at the end of the loop iteration that queued a message; a connection
    # opened after the last PUBACK is served in a later iteration, so the save has happened
    # by then (time-based autosave would still be up to a second away).
    with running(BusClient(handle.settings("hub"))) as later:
        assert later.publish(topics.agent_commands("carol"), sent[0].restamped()).wait(5)
    broker.kill()
    broker.start()
    second = BusClient(agent_settings)
    second.subscribe(commands, to_agent)
    with running(second):
        got = [inbox.get(timeout=10) for _ in sent]
    assert [g.id for g in got] == [c.id for c in sent]
