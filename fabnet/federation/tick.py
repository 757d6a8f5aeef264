"""The federation tick (issue 12): what a dispatching hub process does for its peers every
``[federation] tick_s`` — advertise its capacity when due, hand overflowing tasks to peers
(the delegator's round) and report on the tasks it makes for them (the reporter's round).

Each step runs whatever the others did: one failing (a peer away, the database away a moment)
is logged and the next tick tries again, so a broken link never stops the reports flowing the
other way. A hub with no active, confirmed peer does nothing at all, not even read its key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from fabnet.errors import InvalidInput
from fabnet.federation.advertise import CapacityService
from fabnet.federation.peers import PeerService
from fabnet.store.peers import Peer, PeerState

log = logging.getLogger(__name__)

ADVERTISE, DELEGATE, REPORT = "advertise", "delegate", "report"


class RoundStep(Protocol):
    """One round of work between hubs (``Delegator``, ``Reporter``): what happened, by
    subject (a task id, a peer's name) -> a short text."""

    def round(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class TickReport:
    """What one tick did. ``advertised`` is None when no advertisement was due; ``failed``
    names the steps that raised (their exception is logged)."""

    advertised: dict[str, str] | None = None
    delegated: dict[str, str] = field(default_factory=dict)
    reported: dict[str, str] = field(default_factory=dict)
    failed: tuple[str, ...] = ()
    idle: bool = False  # no active, confirmed peer: nothing was tried


class FederationTick:
    """Runs the steps in order: advertise (every ``advertise_every_s``, and at once to a peer
    newly confirmed), then ``delegator.round()``, then ``reporter.round()``. ``delegator`` or
    ``reporter`` None: that step is not run (the role does not do it).

    The tick itself reads only the peers. One object per process: ``run`` is not re-entrant (the scheduler runs one at a time).
    """

    def __init__(
        self,
        peers: PeerService,
        capacities: CapacityService,
        delegator: RoundStep | None,
        reporter: RoundStep | None,
        clock: Callable[[], datetime],
        *,
        advertise_every_s: float,
    ) -> None:
        if not advertise_every_s > 0:
            raise InvalidInput(f"advertise_every_s must be > 0, got {advertise_every_s!r}")
        self._peers = peers
        self._capacities = capacities
        self._delegator = delegator
        self._reporter = reporter
        self._clock = clock
        self._every = timedelta(seconds=advertise_every_s)
        self._next_advertise: datetime | None = None  # None: due now
        self._advertised_to: frozenset[str] = frozenset()

    def run(self) -> TickReport:
        """One tick; never raises for a step's failure (logged, named in ``failed``)."""
        failed: list[str] = []
        try:
            targets = [p for p in self._peers.list()
                       if p.state is PeerState.ACTIVE and p.confirmed]  # fmt: skip
        except Exception:  # noqa: BLE001 - a scheduler job's top: log, the next tick retries
            log.exception("federation tick: cannot read the peers; the next tick tries again")
            return TickReport(failed=("peers",))
        if not targets:
            self._advertised_to = frozenset()
            return TickReport(idle=True)
        advertised = self._step(ADVERTISE, lambda: self._advertise(targets), failed)
        delegated = self._step(DELEGATE, _round_of(self._delegator), failed)
        reported = self._step(REPORT, _round_of(self._reporter), failed)
        return TickReport(advertised, delegated or {}, reported or {}, tuple(failed))

    def _advertise(self, targets: list[Peer]) -> dict[str, str] | None:
        """Advertise to every target when due, else only to peers not yet advertised to
        (newly confirmed or resumed); None when nobody was due."""
        now = self._clock()
        due = self._next_advertise is None or now >= self._next_advertise
        names = frozenset(p.name for p in targets)
        chosen = targets if due else [p for p in targets if p.name not in self._advertised_to]
        if not chosen:
            self._advertised_to = names
            return None
        results = self._capacities.advertise(chosen)
        if due:
            self._next_advertise = now + self._every
        self._advertised_to = names
        for peer, outcome in sorted(results.items()):
            if outcome != "sent":
                log.warning("federation: capacity not advertised to %s: %s", peer, outcome)
        return results

    def _step(
        self,
        name: str,
        step: Callable[[], dict[str, str] | None] | None,
        failed: list[str],
    ) -> dict[str, str] | None:
        """Run ``step`` (None: skipped); its failure logged and named in ``failed``."""
        if step is None:
            return None
        try:
            result = step()
        except Exception:  # noqa: BLE001 - one step's failure must not stop the others
            log.exception("federation tick: %s failed; the next tick tries again", name)
            failed.append(name)
            return None
        if result and name != ADVERTISE:  # the steps log what matters themselves
            for subject, outcome in sorted(result.items()):
                log.debug("federation %s: %s: %s", name, subject, outcome)
        return result


def _round_of(step: RoundStep | None) -> Callable[[], dict[str, str]] | None:
    return None if step is None else step.round
