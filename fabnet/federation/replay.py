"""Replay protection for signed requests between hubs: a nonce is accepted once per peer.

A request is accepted only within the clock skew of its ``created`` time, so a nonce need be
kept only until ``created + skew`` (later the clock check refuses the request anyway); the
table in the database therefore holds at most one skew window of requests, and every hub
process sharing the database sees the same nonces.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fabnet.federation.signing import SignatureRefused
from fabnet.store.peers import PeerNonces


class ReplayGuard:
    """Accepts each (peer, nonce) once within the skew window."""

    def __init__(self, nonces: PeerNonces, max_skew_s: float) -> None:
        self._nonces = nonces
        self._skew = timedelta(seconds=max_skew_s)

    def accept(self, peer: str, nonce: str, created: int, now: datetime) -> None:
        """Record the nonce; SignatureRefused (401) if ``peer`` used it before."""
        expires = max(datetime.fromtimestamp(created, UTC), now) + self._skew
        if not self._nonces.record(peer, nonce, expires, now):
            raise SignatureRefused(f"replayed request: nonce {nonce} from {peer} was seen before")
