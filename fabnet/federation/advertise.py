"""Advertising capacity between hubs (issue 12): this hub's summary computed from its store and
sent signed to each confirmed, active peer (``POST /federation/v1/capacity``); a peer's
summary received, checked and kept as its latest; the fresh ones read back for the overflow
rule.

A tick calls ``CapacityService.advertise()`` every ``ADVERTISE_EVERY_S`` or so; a summary is
believed for ``DEFAULT_MAX_AGE_S`` after it was computed, so a peer that stopped advertising
(gone, cut off, paused us) soon stops being offered work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from fabnet.errors import DeviceError, InvalidInput
from fabnet.federation.capacity import (
    DEFAULT_MAX_AGE_S,
    CapacitySummary,
    summarize,
    summary_from_json,
    summary_json,
)
from fabnet.federation.client import PeerClient
from fabnet.federation.inbound import Verified
from fabnet.federation.peers import PeerService
from fabnet.store import Store
from fabnet.store.peers import Peer, PeerCapacities, PeerState, queued_hours_by_material

CAPACITY_PATH = "/federation/v1/capacity"
ADVERTISE_EVERY_S = 60.0
SENT = "sent"


class CapacityService:
    """This hub's capacity out, its peers' capacity in."""

    def __init__(self, store: Store, peers: PeerService, clock: Callable[[], datetime],
                 max_age_s: float = DEFAULT_MAX_AGE_S) -> None:  # fmt: skip
        if not max_age_s > 0:
            raise InvalidInput(f"max_age_s must be > 0, got {max_age_s!r}")
        self._store = store
        self._peers = peers
        self._clock = clock
        self.max_age = timedelta(seconds=max_age_s)
        self.capacities = PeerCapacities(store.db)

    def summary(self) -> CapacitySummary:
        """This hub's capacity now, from its machines and queued tasks."""
        me = self._peers.require_identity()
        hours = queued_hours_by_material(self._store.db)
        return summarize(me.name, self._store.catalog.list_machines(), hours, self._clock())

    def advertise(self, peers: Iterable[Peer] | None = None) -> dict[str, str]:
        """Send this hub's summary to every confirmed, active peer (of ``peers``, default all):
        peer name -> ``"sent"`` or why it failed. One peer failing does not stop the others;
        paused, removed and unconfirmed peers are skipped (not in the answer)."""
        me = self._peers.require_identity()
        targets = [p for p in (self._peers.list() if peers is None else peers)
                   if p.state is PeerState.ACTIVE and p.confirmed]  # fmt: skip
        if not targets:
            return {}
        payload = summary_json(self.summary())
        client = PeerClient(me.name, me.key, me.max_skew_s, self._clock)
        results: dict[str, str] = {}
        for peer in targets:
            try:
                client.post(peer, CAPACITY_PATH, payload)
                results[peer.name] = SENT
            except DeviceError as exc:  # refused, not trusted, or unreachable
                results[peer.name] = str(exc)
        return results

    def received(self, verified: Verified, payload: dict[str, Any]) -> dict[str, Any]:
        """Keep a verified peer's summary if it is its newest and still fresh; the answer says
        whether it was kept. InvalidInput for a malformed summary, one naming another hub,
        or one dated in the future beyond the clock skew allowed."""
        me = self._peers.require_identity()
        summary = summary_from_json(payload)
        sender = verified.peer.name
        if summary.hub != sender:
            raise InvalidInput(f"hub must be the sender's name {sender!r}, got {summary.hub!r}")
        now = self._clock()
        if summary.computed_at > now + timedelta(seconds=me.max_skew_s):
            raise InvalidInput(f"computed_at {summary.computed_at.isoformat()} is in the future "
                               f"by more than {me.max_skew_s:g} s")  # fmt: skip
        answer: dict[str, Any] = {"hub": me.name, "peer": sender, "stored": False}
        if not summary.fresh(now, self.max_age):
            return {**answer, "why": f"stale: older than {self.max_age.total_seconds():g} s"}
        if not self.capacities.save(sender, summary_json(summary), summary.computed_at, now):
            return {**answer, "why": "a summary as new or newer is kept"}
        return {**answer, "stored": True}

    def fresh(self) -> dict[str, CapacitySummary]:
        """Each peer's latest summary that is still fresh now (stale ones are left out)."""
        now = self._clock()
        kept: dict[str, CapacitySummary] = {}
        for stored in self.capacities.list():
            summary = summary_from_json(stored.summary)
            if summary.fresh(now, self.max_age):
                kept[stored.peer] = summary
        return kept
