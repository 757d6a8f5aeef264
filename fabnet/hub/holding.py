"""Holding machines that keep failing (issue 10): after each attempt that ended badly the hub
counts the machine's failures in a row; at ``max_consecutive_failures`` it stops offering it
work, records why, and tells its agent (``machine.held``). The maker or an operator releases
it through the API; the hold lives in the database, so every hub sharing it sees both."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from fabnet.bus import messages as msg
from fabnet.core.ids import peer_named
from fabnet.core.tasks import Attempt
from fabnet.hub.machines import split_machine_id
from fabnet.store import Store

log = logging.getLogger(__name__)

DEFAULT_MAX_CONSECUTIVE_FAILURES = 3


class HoldKeeper:
    """Decides holds and notices releases; called on the dispatcher thread only."""

    def __init__(
        self, store: Store, send: Callable[[str, msg.Message], None], max_failures: int
    ) -> None:
        self._store = store
        self._send = send  # (agent id, command)
        self._max = max_failures
        self._held: set[str] = set(store.holds.held())

    def after_attempt(self, attempt: Attempt | None, now: datetime) -> bool:
        """Hold the attempt's machine if this failure made too many in a row; True if it was
        put on hold now."""
        if attempt is None or attempt.failure is None:
            return False
        if not attempt.failure.counts_against_machine:
            return False
        if peer_named(attempt.machine_id) is not None:
            return False  # a peer hub's pseudo-machine: no agent drives it, nothing to hold
        machine_id = attempt.machine_id
        failures = self._store.holds.consecutive_failures(machine_id)
        if failures < self._max:
            return False
        reason = f"{failures} failures in a row, the last {attempt.failure.value}"
        if not self._store.holds.hold(machine_id, reason, now):
            return False
        self._held.add(machine_id)
        log.warning("machine %s held: %s", machine_id, reason)
        agent, machine = split_machine_id(machine_id)
        self._send(agent, msg.MachineHeld(machine=machine, failures=failures, reason=reason))
        return True

    def released(self) -> list[str]:
        """Machines held before and no longer (released through the API, maybe on another
        hub): the dispatcher makes them matchable again."""
        if not self._held:
            return []
        still = set(self._store.holds.held(frozenset(self._held)))
        gone = sorted(self._held - still)
        self._held = still
        return gone
