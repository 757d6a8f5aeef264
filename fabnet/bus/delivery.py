"""What a ``BusClient`` hands back: the tag of a received message (for manual acks), the handle
of a publish, the counters snapshot and the handler signatures. Values apart from the client,
so the hub's inbox and metrics name them without the paho wrapper's machinery."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from fabnet.bus.messages import Message
from fabnet.bus.topics import Topic

__all__ = ["AckHandler", "BusCounters", "Delivery", "DeliveryTag", "Handler"]

Handler = Callable[[Topic, Message], None]


@dataclass(frozen=True)
class DeliveryTag:
    """Names one received message for ``BusClient.ack``: its packet id and QoS on the
    connection (``session``: the client's count of connects) it arrived on. A tag of an earlier
    connection is never acked: the broker re-sends that message on the new one, under a packet
    id it may since have given to another message."""

    mid: int
    qos: int
    session: int


AckHandler = Callable[[Topic, Message, DeliveryTag], None]


@dataclass(frozen=True)
class BusCounters:
    """A snapshot of what one client did since it was made."""

    received: int = 0  # messages that arrived, valid or not
    handled: int = 0  # passed to a handler that returned normally
    published: int = 0  # accepted by publish() (sent or queued)
    dropped: Mapping[str, int] = field(default_factory=dict)  # received, per DropReason value
    handler_errors: int = 0
    refused: int = 0  # publishes or subscriptions the broker refused, or a full queue
    connects: int = 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Delivery:
    """One publish: ``wait`` blocks until the broker acknowledged it (QoS 1) or it was sent."""

    def __init__(self, info: mqtt.MQTTMessageInfo) -> None:
        self._info = info

    @property
    def mid(self) -> int:
        return self._info.mid

    @property
    def done(self) -> bool:
        try:
            return self._info.is_published()
        except (RuntimeError, ValueError):  # QoS 0 while offline: never sent
            return False

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds; True once acknowledged."""
        try:
            self._info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return self.done
