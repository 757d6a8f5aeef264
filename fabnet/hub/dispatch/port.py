"""The dispatcher's view of the bus: what it needs from ``BusClient`` (``BusPort``), and an
in-memory implementation that records what was sent, for fast unit tests without a broker."""

from __future__ import annotations

import threading
from typing import Protocol

from fabnet.bus import messages as msg
from fabnet.bus.client import DeliveryTag
from fabnet.bus.topics import Topic, parse


class BusPort(Protocol):
    """Publish commands, say whether the hub hears the agents now, acknowledge deliveries."""

    @property
    def connected(self) -> bool: ...

    @property
    def connects(self) -> int:
        """Successful connects so far (a change means the connection was lost meanwhile)."""
        ...

    def publish(self, topic: str, msg: msg.Message) -> object: ...

    def ack(self, tag: DeliveryTag) -> None: ...


class InMemoryBus:
    """A ``BusPort`` that keeps every published message; ``connected`` is settable."""

    def __init__(self, connected: bool = True) -> None:
        self._lock = threading.Lock()
        self._connected = connected
        self._connects = 1 if connected else 0
        self.published: list[tuple[Topic, msg.Message]] = []
        self.acked: list[DeliveryTag] = []

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def connects(self) -> int:
        return self._connects

    def set_connected(self, connected: bool) -> None:
        """Lose or regain the broker (a regained connection counts as a new connect)."""
        with self._lock:
            if connected and not self._connected:
                self._connects += 1
            self._connected = connected

    def publish(self, topic: str, msg: msg.Message) -> object:
        with self._lock:
            self.published.append((parse(topic), msg))
        return None

    def ack(self, tag: DeliveryTag) -> None:
        with self._lock:
            self.acked.append(tag)

    def sent(self, kind: type[msg.Message]) -> list[msg.Message]:
        """The published messages of one type, oldest first."""
        with self._lock:
            return [m for _, m in self.published if isinstance(m, kind)]

    def clear(self) -> None:
        with self._lock:
            self.published.clear()
            self.acked.clear()
