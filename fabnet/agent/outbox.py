"""Everything the agent sends goes out here: progress, telemetry and status straight to the bus;
the events that move a task (``MOVING_EVENTS``) through the journal, re-sent until the hub's
``events.ack`` names them (issue 9) — after every reconnect and every ``resend_every_s``.

Re-sending sends the SAME message (same id): the hub's core is idempotent, and it acks a
duplicate like the first copy.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fabnet.agent.journal import Journal, JournalEntry
from fabnet.bus.client import BusClient
from fabnet.bus.messages import MOVING_EVENTS, Message
from fabnet.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

POLL_S = 0.2
# After a reconnect paho re-sends what was in flight by itself; wait this long before sending
# our own copies, to keep duplicates rare.
RESEND_GRACE_S = 2.0
# An event the hub has not acknowledged this long after it was sent goes again (the hub may
# have died between receipt and commit while the broker stayed up).
RESEND_EVERY_S = 30.0


@dataclass
class _Tracked:
    entry: JournalEntry
    sent_at: float | None  # monotonic; None: not sent on this process's connection yet
    sent_on_connect: int  # the bus's connect count when it was last sent


class Outbox:
    """Publishes for one agent; owns the journal's re-delivery thread."""

    def __init__(
        self, bus: BusClient, journal: Journal, *, resend_every_s: float = RESEND_EVERY_S
    ) -> None:
        self._bus = bus
        self._journal = journal
        self._resend_every_s = resend_every_s
        self._lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {
            e.message.id: _Tracked(e, None, -1) for e in journal.pending()
        }
        self._acks: queue.SimpleQueue[tuple[str, ...]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agent-outbox", daemon=True)
        self._seen_connects = 0
        self._connected_at = 0.0
        self.resent = 0  # events sent again for want of the hub's acknowledgement

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def publish(self, topic: str, msg: Message, *, qos: int = 1) -> None:
        """Send ``msg``; one of ``MOVING_EVENTS`` is journaled first (``publish_event``).
        Logs (never raises) when the bus refuses a message that is not journaled."""
        if isinstance(msg, MOVING_EVENTS):
            self.publish_event(topic, msg)
            return
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

    def publish_event(self, topic: str, msg: Message) -> None:
        """Journal ``msg`` durably, then publish it; it is re-sent until the hub acks it."""
        entry = self._journal.record(topic, msg)
        with self._lock:
            tracked = _Tracked(entry, None, -1)
            self._tracked[msg.id] = tracked
            self._send(tracked)

    def acknowledged(self, ids: Iterable[str]) -> None:
        """The hub committed the events ``ids`` (an ``events.ack``); any thread, never blocks:
        the outbox thread forgets them."""
        self._acks.put(tuple(ids))

    def flush(self, timeout_s: float) -> bool:
        """Wait until the hub has acknowledged every journaled event; False if some are still
        unacknowledged after ``timeout_s`` (the journal keeps them for the next start)."""
        deadline = time.monotonic() + timeout_s
        while self.unconfirmed():
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(POLL_S / 4)
        return True

    def unconfirmed(self) -> int:
        """How many journaled events the hub has not acknowledged yet."""
        with self._lock:
            return len(self._tracked)

    def _send(self, tracked: _Tracked) -> None:
        try:
            self._bus.publish(tracked.entry.topic, tracked.entry.message)
        except Conflict as exc:
            log.warning("event %s waits for room: %s", tracked.entry.message.id, exc)
            return
        tracked.sent_at = time.monotonic()
        tracked.sent_on_connect = self._bus.counters().connects

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._take_acks(POLL_S)
                self._tick()
            except Exception:  # top of a thread loop: log, keep going
                log.exception("outbox tick failed")

    def _take_acks(self, wait_s: float) -> None:
        """Apply the acks that arrive within ``wait_s`` (returns early on the first one)."""
        try:
            batches = [self._acks.get(timeout=wait_s)]
        except queue.Empty:
            return
        while not self._acks.empty():
            batches.append(self._acks.get_nowait())
        ids = {i for batch in batches for i in batch}
        with self._lock:
            ours = [i for i in ids if i in self._tracked]
            for msg_id in ours:
                del self._tracked[msg_id]
            self._journal.confirm_many(ours)
        log.debug("hub acknowledged %d event(s), %d ours", len(ids), len(ours))

    def _tick(self) -> None:
        connects = self._bus.counters().connects
        now = time.monotonic()
        if self._bus.connected and connects != self._seen_connects:
            self._seen_connects = connects
            self._connected_at = now
        if not self._bus.connected or now - self._connected_at < RESEND_GRACE_S:
            return
        with self._lock:
            for tracked in self._tracked.values():
                fresh = tracked.sent_on_connect == self._seen_connects
                if fresh and tracked.sent_at is not None:
                    if now - tracked.sent_at < self._resend_every_s:
                        continue
                m = tracked.entry.message
                log.info("re-sending %s %s: the hub has not acknowledged it", m.TYPE, m.id)
                self.resent += 1
                self._send(tracked)
