"""Every MQTT topic of the v1 contract (DESIGN.md §3) is built and parsed here, and only here.

Agent and machine ids appear in topics and in broker ACLs (the agent id is its broker username),
so they are restricted to ``[A-Za-z0-9_-]{1,64}``: no ``/``, ``+``, ``#`` or ``$`` can sneak in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from fabnet.bus.schema import DropReason, InvalidMessage
from fabnet.errors import InvalidInput

PREFIX = "fabnet/v1"
HUB_SHARE_GROUP = "fabnet-hub"
ID_REGEX = r"[A-Za-z0-9_-]{1,64}"
_ID = re.compile(ID_REGEX)
_SHARE = re.compile(r"\$share/[^/+#]+/(.+)")


class TopicKind(enum.Enum):
    """What a topic carries; each message type belongs to exactly one kind."""

    AGENT_STATUS = "agent_status"
    MACHINE_STATUS = "machine_status"
    TELEMETRY = "telemetry"
    EVENTS = "events"
    COMMANDS = "commands"
    HUB_STATUS = "hub_status"


_MACHINE_LEAVES = {
    "status": TopicKind.MACHINE_STATUS,
    "telemetry": TopicKind.TELEMETRY,
    "events": TopicKind.EVENTS,
}


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a string usable as an agent, machine or user id."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid id; raises InvalidInput naming ``what`` otherwise."""
    if not is_valid_id(value):
        raise InvalidInput(f"{what} must be 1-64 letters, digits, '_' or '-', got {value!r:.80}")
    return value


@dataclass(frozen=True)
class Topic:
    """A parsed topic: its kind and the agent / machine it belongs to (None where not part)."""

    kind: TopicKind
    agent: str | None = None
    machine: str | None = None

    def __str__(self) -> str:
        if self.kind is TopicKind.HUB_STATUS:
            return hub_status()
        assert self.agent is not None
        if self.kind is TopicKind.AGENT_STATUS:
            return agent_status(self.agent)
        if self.kind is TopicKind.COMMANDS:
            return agent_commands(self.agent)
        assert self.machine is not None
        leaf = next(k for k, v in _MACHINE_LEAVES.items() if v is self.kind)
        return f"{_machine_base(self.agent, self.machine)}/{leaf}"


def agent_status(agent: str) -> str:
    """``fabnet/v1/agents/{agent}/status`` (retained, QoS 1)."""
    return f"{PREFIX}/agents/{check_id(agent, 'agent')}/status"


def agent_commands(agent: str) -> str:
    """``fabnet/v1/agents/{agent}/commands`` (hub → agent, QoS 1)."""
    return f"{PREFIX}/agents/{check_id(agent, 'agent')}/commands"


def _machine_base(agent: str, machine: str) -> str:
    return f"{PREFIX}/agents/{check_id(agent, 'agent')}/machines/{check_id(machine, 'machine')}"


def machine_status(agent: str, machine: str) -> str:
    """``fabnet/v1/agents/{agent}/machines/{machine}/status`` (retained, QoS 1)."""
    return f"{_machine_base(agent, machine)}/status"


def machine_telemetry(agent: str, machine: str) -> str:
    """``fabnet/v1/agents/{agent}/machines/{machine}/telemetry`` (QoS 0, not retained)."""
    return f"{_machine_base(agent, machine)}/telemetry"


def machine_events(agent: str, machine: str) -> str:
    """``fabnet/v1/agents/{agent}/machines/{machine}/events`` (QoS 1)."""
    return f"{_machine_base(agent, machine)}/events"


def hub_status() -> str:
    """``fabnet/v1/hub/status`` (retained, QoS 1; the hub's Last Will marks it gone)."""
    return f"{PREFIX}/hub/status"


@dataclass(frozen=True)
class Subscription:
    """A topic filter to subscribe to and the QoS to ask for."""

    filter: str
    qos: int


def shared(topic_filter: str, group: str = HUB_SHARE_GROUP) -> str:
    """The MQTT v5 shared-subscription form ``$share/{group}/{filter}``."""
    return f"$share/{check_id(group, 'share group')}/{topic_filter}"


def strip_share(topic_filter: str) -> str:
    """The plain filter inside a ``$share/{group}/...`` filter (unchanged if not shared)."""
    match = _SHARE.fullmatch(topic_filter)
    return match.group(1) if match else topic_filter


def hub_subscriptions(share: bool = False) -> tuple[Subscription, ...]:
    """Filters a hub subscribes to.

    Status topics are never shared: MQTT v5 does not send retained messages to shared
    subscriptions, and every hub process needs every agent's and machine's current status.
    With ``share`` (several hub processes on one broker) events and telemetry are split
    between them (``$share/fabnet-hub/...``). Off by default because Mosquitto 2.0.11 does not
    restore shared subscriptions from its persistence file: after a broker crash the session is
    reported present but the shared filters are gone until ``BusClient`` re-subscribes them, and
    events published in between are lost. Plain subscriptions survive a restart intact.
    """
    machines = f"{PREFIX}/agents/+/machines/+"
    work = [Subscription(f"{machines}/events", 1), Subscription(f"{machines}/telemetry", 0)]
    if share:
        work = [Subscription(shared(s.filter), s.qos) for s in work]
    return (
        Subscription(f"{PREFIX}/agents/+/status", 1),
        Subscription(f"{machines}/status", 1),
        *work,
    )


def agent_subscriptions(agent: str) -> tuple[Subscription, ...]:
    """Filters an agent subscribes to: its own commands and the hub's status."""
    return (Subscription(agent_commands(agent), 1), Subscription(hub_status(), 1))


def agent_acl_patterns() -> tuple[tuple[str, str], ...]:
    """(access, Mosquitto ``pattern``) pairs every broker user gets; ``%u`` is the username,
    which for an agent is its agent id (DESIGN.md §3)."""
    return (
        ("write", f"{PREFIX}/agents/%u/#"),
        ("read", f"{PREFIX}/agents/%u/commands"),
        ("read", hub_status()),
    )


def hub_acl_filter() -> str:
    """The filter the hub user may read and write: everything of v1."""
    return f"{PREFIX}/#"


def parse(topic: str) -> Topic:
    """Parse a received topic; raises InvalidMessage (reason BAD_TOPIC) for anything that is not
    a v1 topic with valid ids."""
    parts = topic.split("/")
    if parts[:2] != PREFIX.split("/") or len(parts) < 4:
        raise InvalidMessage(DropReason.BAD_TOPIC, f"topic {topic!r:.120} is not under {PREFIX}/")
    rest = parts[2:]
    if rest == ["hub", "status"]:
        return Topic(TopicKind.HUB_STATUS)
    if rest[0] == "agents" and is_valid_id(rest[1]):
        agent = rest[1]
        if len(rest) == 3 and rest[2] == "status":
            return Topic(TopicKind.AGENT_STATUS, agent)
        if len(rest) == 3 and rest[2] == "commands":
            return Topic(TopicKind.COMMANDS, agent)
        if len(rest) == 5 and rest[2] == "machines" and is_valid_id(rest[3]):
            kind = _MACHINE_LEAVES.get(rest[4])
            if kind is not None:
                return Topic(kind, agent, rest[3])
    raise InvalidMessage(DropReason.BAD_TOPIC, f"topic {topic!r:.120} is not a fabnet v1 topic")
