"""Verifying a signed request from a peer hub: who it claims to be, that the peering is live,
that the key, clock, body and signature check out, and that it is not a replay.

Nothing is written unless every check passes; then only the nonce is recorded. A stranger
learns nothing about a peering's state: the signature is checked before pause is looked at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from fabnet.federation import signing as sg
from fabnet.federation.keys import PublicKey
from fabnet.federation.replay import ReplayGuard
from fabnet.store.peers import Peer, Peers, PeerState


@dataclass(frozen=True)
class Verified:
    """A request that passed: the peer it came from and its nonce (to sign the answer)."""

    peer: Peer
    nonce: str


class InboundVerifier:
    """Checks signed requests against the peer table and the replay store."""

    def __init__(self, peers: Peers, replay: ReplayGuard, max_skew_s: float) -> None:
        self._peers = peers
        self._replay = replay
        self._skew_s = max_skew_s

    def verify(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes, now: datetime) -> Verified:  # fmt: skip
        """The peer that signed this request; SignatureRefused (401/403) naming the problem.
        ``headers`` are keyed lower-case (``signing.lower_headers``)."""
        hub = sg.header(headers, sg.HUB_HEADER)
        params = sg.parse_params(sg.header(headers, sg.INPUT_HEADER), sg.REQUEST_COMPONENTS)
        signature = sg.parse_signature(sg.header(headers, sg.SIGNATURE_HEADER))
        peer = self._peers.get(hub)
        if peer is None or peer.state is PeerState.REMOVED:
            raise sg.SignatureRefused(f"unknown peer {hub!r}: this hub has not added it")
        sg.check_clock(params.created, now.timestamp(), self._skew_s)
        digest = sg.check_digest(headers, body)
        values = sg.request_values(method, path, query, digest, hub)
        sg.check_signature(PublicKey(peer.public_key), values, params, signature, hub)
        if peer.state is PeerState.PAUSED:
            raise sg.SignatureRefused(f"peering with {hub} is paused on this hub", status=403)
        self._replay.accept(hub, params.nonce, params.created, now)
        return Verified(peer, params.nonce)
