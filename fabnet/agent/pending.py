"""Offers waiting for the maker's answer (policy ``auto_accept = false``): kept in memory and
in a JSON file in the data folder, so a restarted agent still lists them.

The hub does not wait: its offer timeout requeues the task if nobody answers; a pending offer
older than ``ttl_s`` is forgotten here too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fabnet.bus import topics
from fabnet.bus.messages import InvalidMessage, TaskOffer, decode, encode

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 3600.0


@dataclass(frozen=True)
class PendingOffer:
    """An offer the maker has not answered; ``received`` is UTC."""

    offer: TaskOffer
    received: datetime


class PendingOffers:
    """Thread-safe store of unanswered offers of one agent, at most one per machine."""

    def __init__(self, path: Path, agent_id: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.path = Path(path)
        self._topic = topics.agent_commands(agent_id)
        self._ttl = timedelta(seconds=ttl_s)
        self._lock = threading.Lock()
        self._offers: dict[str, PendingOffer] = self._load()

    def _load(self) -> dict[str, PendingOffer]:
        if not self.path.exists():
            return {}
        try:
            records = json.loads(self.path.read_text(encoding="utf-8"))
            out: dict[str, PendingOffer] = {}
            for record in records:
                msg = decode(self._topic, record["payload"].encode("utf-8"))
                if isinstance(msg, TaskOffer):
                    out[msg.machine] = PendingOffer(msg, datetime.fromisoformat(record["received"]))
            return out
        except (ValueError, KeyError, TypeError, InvalidMessage) as exc:
            log.warning("%s unreadable, starting with no pending offers: %s", self.path, exc)
            return {}

    def _save(self) -> None:
        records = [
            {"payload": encode(p.offer).decode("utf-8"), "received": p.received.isoformat()}
            for p in self._offers.values()
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(records, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def add(self, offer: TaskOffer, now: datetime) -> None:
        """Keep ``offer`` (UTC ``now``) for its machine, replacing an older one."""
        with self._lock:
            self._offers[offer.machine] = PendingOffer(offer, now)
            self._save()

    def get(self, machine: str, now: datetime) -> PendingOffer | None:
        """The machine's unexpired pending offer, if any."""
        with self._lock:
            found = self._offers.get(machine)
            if found is not None and now - found.received > self._ttl:
                log.info("pending offer of task %s on %s expired", found.offer.task_id, machine)
                del self._offers[machine]
                self._save()
                return None
            return found

    def take(self, machine: str, task_id: str) -> TaskOffer | None:
        """Remove and return the machine's pending offer for ``task_id`` (None if absent)."""
        with self._lock:
            found = self._offers.get(machine)
            if found is None or found.offer.task_id != task_id:
                return None
            del self._offers[machine]
            self._save()
            return found.offer

    def all(self) -> list[PendingOffer]:
        """Every pending offer, oldest first."""
        with self._lock:
            return sorted(self._offers.values(), key=lambda p: p.received)


def utc_now() -> datetime:
    return datetime.now(UTC)
