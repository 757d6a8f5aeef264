"""Everything the agent sends goes out here: plain events straight to the bus, terminal events
through the journal, re-published after a reconnect until the broker has acknowledged them.

Re-publishing sends the SAME message (same id): the hub de-duplicates by id.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from fabnet.agent.journal import Journal, JournalEntry
from fabnet.bus.client import BusClient, Delivery
from fabnet.bus.messages import Message
from fabnet.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

POLL_S = 0.2
# After a reconnect paho re-sends what was in flight by itself; wait this long for those
# acknowledgements before sending our own copies, to keep duplicates rare.
RESEND_GRACE_S = 2.0


@dataclass
class _Tracked:
    entry: JournalEntry
    delivery: Delivery | None  # None: not sent on this process's connection yet
    sent_on_connect: int  # the bus's connect count when it was last sent


class Outbox:
    """Publishes for one agent; owns the journal's re-delivery thread."""

    def __init__(self, bus: BusClient, journal: Journal) -> None:
        self._bus = bus
        self._journal = journal
        self._lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {
            e.message.id: _Tracked(e, None, -1) for e in journal.pending()
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agent-outbox", daemon=True)
        self._seen_connects = 0
        self._connected_at = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def publish(self, topic: str, msg: Message, *, qos: int = 1) -> None:
        """Send a non-terminal message; logs (never raises) when the bus refuses it."""
        try:
            self._bus.publish(topic, msg, qos=qos)
        except (Conflict, InvalidInput) as exc:
            log.warning("%s %s not sent: %s", msg.TYPE, msg.id, exc)

    def publish_status(self, topic: str, msg: Message) -> None:
        """Retained state, re-published by the bus client after every reconnect."""
        try:
            self._bus.publish_status(topic, msg)
        except (Conflict, InvalidInput) as exc:
            log.warning("%s %s not sent: %s", msg.TYPE, msg.id, exc)

    def publish_terminal(self, topic: str, msg: Message) -> None:
        """Journal ``msg`` durably, then publish it; it is re-sent until acknowledged."""
        entry = self._journal.record(topic, msg)
        with self._lock:
            tracked = _Tracked(entry, None, -1)
            self._tracked[msg.id] = tracked
            self._send(tracked)

    def flush(self, timeout_s: float) -> bool:
        """Wait until the broker has acknowledged every terminal event (the loop thread
        confirms them); False if some are still unconfirmed after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.unconfirmed():
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(POLL_S / 2)
        return True

    def unconfirmed(self) -> int:
        """How many terminal events the broker has not acknowledged yet."""
        with self._lock:
            return len(self._tracked)

    def _send(self, tracked: _Tracked) -> None:
        try:
            tracked.delivery = self._bus.publish(tracked.entry.topic, tracked.entry.message)
            tracked.sent_on_connect = self._bus.counters().connects
        except Conflict as exc:
            log.warning("terminal event %s waits for room: %s", tracked.entry.message.id, exc)

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._tick()
            except Exception:  # top of a thread loop: log, keep going
                log.exception("outbox tick failed")

    def _tick(self) -> None:
        connects = self._bus.counters().connects
        if self._bus.connected and connects != self._seen_connects:
            self._seen_connects = connects
            self._connected_at = time.monotonic()
        with self._lock:
            for msg_id, tracked in list(self._tracked.items()):
                if tracked.delivery is not None and tracked.delivery.done:
                    self._journal.confirm(msg_id)
                    del self._tracked[msg_id]
                    log.debug("terminal event %s confirmed", msg_id)
            if not self._bus.connected or time.monotonic() - self._connected_at < RESEND_GRACE_S:
                return
            for tracked in self._tracked.values():
                if tracked.sent_on_connect != self._seen_connects:
                    log.info("re-publishing unconfirmed %s %s", tracked.entry.message.TYPE,
                             tracked.entry.message.id)  # fmt: skip
                    self._send(tracked)
