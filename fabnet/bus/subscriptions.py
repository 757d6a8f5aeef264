"""``Subscriptions``: a client's topic filters and their handlers, kept across reconnects.

Apart from ``BusClient`` because it is the one piece of its state both paho's loop thread
(routing a message, renewing filters on connect) and callers' threads (``subscribe``) touch:
one lock, one table.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from fabnet.bus.delivery import AckHandler, Handler
from fabnet.bus.topics import strip_share

__all__ = ["Subscriptions"]


class Subscriptions:
    """Thread-safe table: filter -> QoS, plain filter, handler, whether the handler acks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, tuple[int, str, Handler | AckHandler, bool]] = {}

    def add(self, topic_filter: str, handler: Handler | AckHandler, qos: int, acked: bool) -> None:
        """Route ``topic_filter`` (``$share/group/...`` allowed) to ``handler``; replaces an
        earlier handler of the same filter."""
        with self._lock:
            self._subs[topic_filter] = (qos, strip_share(topic_filter), handler, acked)

    def to_renew(self, first: bool, session_present: bool) -> list[tuple[str, SubscribeOptions]]:
        """The filters to subscribe on a connect.

        The first connect of a client subscribes even to a present session: the filters may be
        new, and it brings the retained state a starting process needs. Mosquitto 2.0.11 drops
        shared subscriptions when it restores a session from its persistence file yet reports
        the session present: those are always renewed.
        """
        with self._lock:
            return [
                (f, SubscribeOptions(qos=q))
                for f, (q, plain, _, _) in self._subs.items()
                if first or not session_present or plain != f
            ]

    def handler_for(self, topic: str) -> tuple[Handler | AckHandler, bool] | None:
        """The handler of the first filter matching ``topic`` and whether it acks, or None."""
        with self._lock:
            for _qos, plain, handler, acked in self._subs.values():
                if mqtt.topic_matches_sub(plain, topic):
                    return handler, acked
        return None
