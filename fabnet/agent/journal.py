"""The agent's journal of terminal task events: each is on disk before it is published, and
stays "unconfirmed" until the broker acknowledged it, so no completion or failure is lost to
a broker restart or an agent crash.

One JSON object per line: ``{"op": "event", "topic": ..., "payload": ...}`` when an event is
recorded, ``{"op": "confirmed", "id": ...}`` once the broker has it. Opening the journal
compacts it to the unconfirmed events.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabnet.bus.messages import InvalidMessage, Message, decode, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEntry:
    """One recorded event: the topic it goes to and the message (its id is the key)."""

    topic: str
    message: Message


class Journal:
    """An append-only file of terminal events; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pending: dict[str, JournalEntry] = self._read()
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

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for entry in self._pending.values():
                handle.write(_event_line(entry))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def record(self, topic: str, msg: Message) -> JournalEntry:
        """Write ``msg`` for ``topic`` durably (fsync) and return its entry. Raises
        InvalidInput if ``msg`` cannot be encoded, OSError if the disk refuses."""
        entry = JournalEntry(topic, msg)
        with self._lock:
            self._append(_event_line(entry))
            self._pending[msg.id] = entry
        return entry

    def confirm(self, msg_id: str) -> None:
        """Mark the event ``msg_id`` as acknowledged by the broker (no-op if unknown)."""
        with self._lock:
            if self._pending.pop(msg_id, None) is not None:
                self._append(json.dumps({"op": "confirmed", "id": msg_id}) + "\n")

    def pending(self) -> list[JournalEntry]:
        """The unconfirmed events, oldest first."""
        with self._lock:
            return list(self._pending.values())


def _event_line(entry: JournalEntry) -> str:
    payload = encode(entry.message).decode("utf-8")
    return json.dumps({"op": "event", "topic": entry.topic, "payload": payload}) + "\n"
