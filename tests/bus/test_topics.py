"""Topics are built in one place, parse back to what built them, and reject foreign ids."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from fabnet.bus import topics
from fabnet.bus.schema import DropReason, InvalidMessage
from fabnet.bus.topics import Topic, TopicKind
from fabnet.errors import InvalidInput


def test_topics_match_the_contract() -> None:
    assert topics.agent_status("alice") == "fabnet/v1/agents/alice/status"
    assert topics.agent_commands("alice") == "fabnet/v1/agents/alice/commands"
    assert topics.machine_status("alice", "mk3") == "fabnet/v1/agents/alice/machines/mk3/status"
    assert topics.machine_telemetry("a", "m") == "fabnet/v1/agents/a/machines/m/telemetry"
    assert topics.machine_events("a", "m") == "fabnet/v1/agents/a/machines/m/events"
    assert topics.hub_status() == "fabnet/v1/hub/status"


@pytest.mark.parametrize(
    "topic",
    [
        Topic(TopicKind.HUB_STATUS),
        Topic(TopicKind.AGENT_STATUS, "alice"),
        Topic(TopicKind.COMMANDS, "a-1_B"),
        Topic(TopicKind.MACHINE_STATUS, "alice", "mk3"),
        Topic(TopicKind.TELEMETRY, "alice", "x" * 64),
        Topic(TopicKind.EVENTS, "A" * 64, "m"),
    ],
)
def test_parse_inverts_build(topic: Topic) -> None:
    assert topics.parse(str(topic)) == topic


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "$SYS", "é", "a b", "x" * 65, "a\x00"])
def test_bad_ids_cannot_build_a_topic(bad: str) -> None:
    with pytest.raises(InvalidInput, match="agent must be 1-64"):
        topics.agent_status(bad)
    with pytest.raises(InvalidInput, match="machine must be 1-64"):
        topics.machine_events("alice", bad)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "fabnet/v1",
        "fabnet/v2/hub/status",
        "fabnet/v1/hub/status/x",
        "fabnet/v1/agents/alice",
        "fabnet/v1/agents/alice/status/x",
        "fabnet/v1/agents/al ice/status",
        "fabnet/v1/agents//status",
        "fabnet/v1/agents/alice/machines/mk3",
        "fabnet/v1/agents/alice/machines/mk3/gcode",
        "fabnet/v1/agents/alice/machines/+/events",
        "fabnet/v1/agents/alice/machines/mk3/events/extra",
        f"fabnet/v1/agents/{'a' * 65}/status",
        "other/v1/agents/alice/status",
    ],
)
def test_parse_rejects_anything_else(bad: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        topics.parse(bad)
    assert info.value.reason is DropReason.BAD_TOPIC


def test_hub_shares_work_but_not_status() -> None:
    subs = {s.filter: s.qos for s in topics.hub_subscriptions(share=True)}
    assert subs == {
        "fabnet/v1/agents/+/status": 1,
        "fabnet/v1/agents/+/machines/+/status": 1,
        "$share/fabnet-hub/fabnet/v1/agents/+/machines/+/events": 1,
        "$share/fabnet-hub/fabnet/v1/agents/+/machines/+/telemetry": 0,
    }
    plain = {s.filter for s in topics.hub_subscriptions()}
    assert plain == {topics.strip_share(f) for f in subs}
    for built in (topics.machine_events("a", "m"), topics.agent_status("a")):
        assert sum(mqtt.topic_matches_sub(f, built) for f in plain) == 1


def test_agent_subscribes_to_its_commands_and_the_hub() -> None:
    filters = [s.filter for s in topics.agent_subscriptions("alice")]
    assert filters == ["fabnet/v1/agents/alice/commands", "fabnet/v1/hub/status"]
