"""The agent's journal of task events that move a task (accepted, declined, started,
completed, failed): each is on disk before it is published, and stays until the HUB has
acknowledged it (``events.ack``, sent after the hub's transaction committed; issue 9). The
broker's PUBACK is not enough: a hub killed between receipt and commit, or a broker killed
with the event queued for the hub, would lose it.

One JSON object per line: ``{"op": "event", "topic": ..., "payload": ...}`` when an event is
recorded (fsynced), ``{"op": "confirmed", "id": ...}`` once the hub acknowledged it (not
fsynced: a lost confirmation only means one harmless re-send, the hub is idempotent). The file
is compacted to the unconfirmed events on opening and whenever confirmed lines outnumber them.

Bounded: at most ``max_events`` unconfirmed events. A hub that never acknowledges (or one that
predates ``events.ack``) therefore cannot grow it without limit: past the bound the OLDEST
event is given up, logged as an error and counted in ``given_up``. The hub's lease and offer
expiry then requeue that task, so the worst outcome is a part made again, never a lost task.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabnet.bus.messages import InvalidMessage, Message, decode, encode

log = logging.getLogger(__name__)

MAX_EVENTS = 10_000  # unconfirmed events kept: days of work for a busy agent
COMPACT_SLACK = 256  # confirmed lines tolerated beyond the pending ones before a rewrite


@dataclass(frozen=True)
class JournalEntry:
    """One recorded event: the topic it goes to and the message (its id is the key)."""

    topic: str
    message: Message


class Journal:
    """An append-only file of task events awaiting the hub's acknowledgement; thread-safe."""

    def __init__(self, path: Path, max_events: int = MAX_EVENTS) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, got {max_events}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self.given_up = 0  # events dropped unconfirmed because the journal was full
        self._lock = threading.Lock()
        self._pending: dict[str, JournalEntry] = self._read()
        self._lines = 0
        self._rewrite()

    def _read(self) -> dict[str, JournalEntry]:
        pending: dict[str, JournalEntry] = {}
        if not self.path.exists():
            return pending
        with self.path.open(encoding="utf-8") as handle:
            for n, line in enumerate(handle, 1):
                try:
                    self._apply(json.loads(line), pending)
                except (ValueError, KeyError, TypeError, InvalidMessage) as exc:
                    # a torn last line after a crash, or a hand-edited file: skip, never stop
                    log.warning("%s line %d unreadable, skipped: %s", self.path, n, exc)
        while len(pending) > self.max_events:
            self._give_up(pending)
        if pending:
            log.info("journal %s holds %d unconfirmed event(s)", self.path, len(pending))
        return pending

    @staticmethod
    def _apply(record: Any, pending: dict[str, JournalEntry]) -> None:
        if record["op"] == "event":
            topic = record["topic"]
            msg = decode(topic, record["payload"].encode("utf-8"))
            pending[msg.id] = JournalEntry(topic, msg)
        elif record["op"] == "confirmed":
            pending.pop(record["id"], None)
        else:
            raise ValueError(f"unknown op {record['op']!r}")

    def _give_up(self, pending: dict[str, JournalEntry]) -> None:
        oldest = next(iter(pending))
        entry = pending.pop(oldest)
        self.given_up += 1
        m = entry.message
        log.error("journal %s full (%d events the hub has not acknowledged): giving up %s %s "
                  "of task %s; the hub's lease expiry requeues it", self.path, self.max_events,
                  m.TYPE, m.id, getattr(m, "task_id", "?"))  # fmt: skip

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for entry in self._pending.values():
                handle.write(_event_line(entry))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._lines = len(self._pending)

    def _append(self, line: str, *, sync: bool) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        self._lines += 1

    def record(self, topic: str, msg: Message) -> JournalEntry:
        """Write ``msg`` for ``topic`` durably (fsync) and return its entry. Raises
        InvalidInput if ``msg`` cannot be encoded, OSError if the disk refuses."""
        entry = JournalEntry(topic, msg)
        with self._lock:
            self._append(_event_line(entry), sync=True)
            self._pending[msg.id] = entry
            while len(self._pending) > self.max_events:
                self._give_up(self._pending)
        return entry

    def confirm(self, msg_id: str) -> bool:
        """Forget the event ``msg_id``, acknowledged by the hub; False if it was not pending."""
        return self.confirm_many((msg_id,)) == 1

    def confirm_many(self, msg_ids: Iterable[str]) -> int:
        """Forget every pending event among ``msg_ids``; returns how many were pending."""
        with self._lock:
            gone = [i for i in msg_ids if self._pending.pop(i, None) is not None]
            if not gone:
                return 0
            lines = "".join(json.dumps({"op": "confirmed", "id": i}) + "\n" for i in gone)
            self._append(lines, sync=False)
            self._lines += len(gone) - 1
            if self._lines > 2 * len(self._pending) + COMPACT_SLACK:
                self._rewrite()
            return len(gone)

    def __contains__(self, msg_id: object) -> bool:
        with self._lock:
            return msg_id in self._pending

    def pending(self) -> list[JournalEntry]:
        """The unconfirmed events, oldest first."""
        with self._lock:
            return list(self._pending.values())


def _event_line(entry: JournalEntry) -> str:
    payload = encode(entry.message).decode("utf-8")
    return json.dumps({"op": "event", "topic": entry.topic, "payload": payload}) + "\n"
