"""When the hub may expire leases: never while it cannot hear the agents (its broker connection
is down), nor within one lease length after it hears them again, so completions made while it
was deaf arrive (re-sent by the agents, re-delivered by the broker) before their leases run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class HearingGate:
    """Fed the bus's state at every tick (``observe``); answers ``leases_may_expire``."""

    def __init__(self, lease_s: float) -> None:
        self._lease = timedelta(seconds=lease_s)
        self._connects = -1
        self._heard_since: datetime | None = None  # start of the current connection, as seen

    def observe(self, connected: bool, connects: int, now: datetime) -> None:
        """Record the bus's state at ``now``. A new connect count means the connection was
        lost and regained since the last look, even if it is up at both."""
        if not connected:
            self._heard_since = None
        elif self._heard_since is None or connects != self._connects:
            self._heard_since = now
        self._connects = connects

    def hearing(self) -> bool:
        """True if the bus was connected at the last ``observe``."""
        return self._heard_since is not None

    def leases_may_expire(self, now: datetime) -> bool:
        """True once the hub has heard the agents for at least one lease length."""
        return self._heard_since is not None and now - self._heard_since >= self._lease
