"""``DropLog``: counts what a process refuses from its peers (bad MQTT messages, implausible
reports, machines over the cap) and logs one line per drop, rate-limited per reason, so a
misbehaving agent can neither crash the hub nor fill its log (issue 13, item 14)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

FIRST_LOGGED = 100  # drops of one reason logged one line each before the rate limit starts
LOG_INTERVAL_S = 60.0  # after that, at most one line per reason per interval, with the count


class DropLog:
    """Thread-safe per-reason counters of refused input; ``drop`` never raises."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        first_logged: int = FIRST_LOGGED,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._first = first_logged
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last_logged: dict[str, tuple[float, int]] = {}  # reason -> (when, count then)

    def drop(self, reason: str, where: str, detail: str) -> int:
        """Count one drop of ``reason`` (e.g. ``bad-payload``) on ``where`` (a topic, an agent)
        and log it as one warning line unless rate-limited; the count of that reason so far."""
        now = self._clock()
        with self._lock:
            n = self._counts.get(reason, 0) + 1
            self._counts[reason] = n
            last_at, last_n = self._last_logged.get(reason, (float("-inf"), 0))
            due = n <= self._first or now - last_at >= self._interval_s
            if due:
                self._last_logged[reason] = (now, n)
        if due:
            skipped = n - last_n - 1 if n > self._first else 0
            more = f" ({skipped} more not logged)" if skipped > 0 else ""
            self._log.warning(
                "dropped #%d (%s) on %.120s: %.300s%s", n, reason, where, detail, more
            )
        return n

    def counts(self) -> Mapping[str, int]:
        """A snapshot: drops per reason so far."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
