"""The peering service: an operator adds, pauses, resumes and removes peer hubs (checked here
at the edge), and this hub says hello to a peer to confirm the link both ways.

A hello is a signed ``POST /federation/v1/hello`` to the peer; the peer accepts it only if it
has added this hub (with this hub's key), and answers signed with its own key, which this hub
checks against the key it was given. One accepted round trip therefore proves that each side
holds the other's key; each side records the hellos it accepted and those confirmed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fabnet.bus.topics import check_id
from fabnet.config import FederationConfig
from fabnet.core.states import MachineKind
from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.federation.client import PeerClient
from fabnet.federation.inbound import Verified
from fabnet.federation.keys import HubKey, parse_public_key
from fabnet.profiles.canonical import canonical_material
from fabnet.store.peers import Peer, Peers, PeerState, PeerTerms

HELLO_PATH = "/federation/v1/hello"
MAX_IN_FLIGHT = 10_000
MAX_URL_CHARS = 400
DEFAULT_SKEW_S = 300.0
_HOST = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")


@dataclass(frozen=True)
class Identity:
    """This hub among its peers: its name, its key, the clock skew it allows."""

    name: str
    key: HubKey
    max_skew_s: float

    @classmethod
    def from_config(cls, config: FederationConfig) -> Identity:
        return cls(config.name, HubKey.load_or_create(config.key_file), config.max_clock_skew_s)


def check_url(url: str) -> str:
    """A peer's base URL: http(s)://host[:port][/prefix], no query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"url must look like https://host[:port], got {url!r:.100}")
    if parts.query or parts.fragment or not _HOST.match(parts.netloc.split("@")[-1]):
        raise InvalidInput(
            f"url must be a plain base URL without query or fragment, got {url!r:.100}"
        )
    if "@" in parts.netloc or len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"url must carry no user:password and be at most {MAX_URL_CHARS} "
                           f"characters, got {url!r:.100}")  # fmt: skip
    return url.strip().rstrip("/")


def check_terms(materials: list[str] | tuple[str, ...], kinds: list[str] | tuple[str, ...],
                max_in_flight: int, charges_credits: bool) -> PeerTerms:  # fmt: skip
    """Shared materials (the materials table's spelling), machine kinds, the cap on tasks in
    flight; InvalidInput naming the bad value."""
    known = tuple(k.value for k in MachineKind)
    for kind in kinds:
        if kind not in known:
            raise InvalidInput(f"kinds must be among {', '.join(known)}, got {kind!r}")
    if not kinds:
        raise InvalidInput(f"kinds must name at least one of {', '.join(known)}")
    if not 0 <= max_in_flight <= MAX_IN_FLIGHT:
        raise InvalidInput(f"max_in_flight must be 0..{MAX_IN_FLIGHT}, got {max_in_flight}")
    shared = tuple(dict.fromkeys(canonical_material(m, "materials") for m in materials))
    return PeerTerms(shared, tuple(dict.fromkeys(kinds)), max_in_flight, charges_credits)


class PeerService:
    """Peers of this hub. ``config`` None: federation is not configured, so the table can be
    managed but no hello sent or answered. The key is read (or made) on first need, so a hub
    that never federates starts without touching its key file."""

    def __init__(self, peers: Peers, config: FederationConfig | None,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self.peers = peers
        self.config = config
        self._clock = clock
        self._identity: Identity | None = None

    @property
    def max_skew_s(self) -> float:
        return self.config.max_clock_skew_s if self.config else DEFAULT_SKEW_S

    def require_identity(self) -> Identity:
        if self.config is None:
            raise Conflict("federation is not configured on this hub ([federation] in hub.toml)")
        if self._identity is None:  # two threads may both load it: the same key either way
            self._identity = Identity.from_config(self.config)
        return self._identity

    def add(self, name: str, url: str, key: str, terms: PeerTerms) -> Peer:
        check_id(name, "name")
        public = parse_public_key(key)
        if self.config is not None and name == self.config.name:
            raise InvalidInput(f"name {name} is this hub's own name")
        return self.peers.add(name, check_url(url), public.text, public.key_id, terms,
                              self._clock())  # fmt: skip

    def list(self) -> list[Peer]:
        return self.peers.list()

    def get(self, name: str) -> Peer:
        peer = self.peers.get(name)
        if peer is None or peer.state is PeerState.REMOVED:
            raise NotFound(f"no peer named {name}")
        return peer

    def pause(self, name: str) -> Peer:
        return self.peers.set_state(name, PeerState.PAUSED, self._clock())

    def resume(self, name: str) -> Peer:
        return self.peers.set_state(name, PeerState.ACTIVE, self._clock())

    def remove(self, name: str) -> Peer:
        return self.peers.set_state(name, PeerState.REMOVED, self._clock())

    def hello(self, name: str) -> Peer:
        """Say hello to peer ``name``: Conflict if it is paused here; PeerRefused if it refuses
        or its answer is not signed by its key; DeviceError if it cannot be reached."""
        me = self.require_identity()
        peer = self.get(name)
        if peer.state is not PeerState.ACTIVE:
            raise Conflict(f"peering with {name} is {peer.state.value}; resume it first")
        client = PeerClient(me.name, me.key, me.max_skew_s, self._clock)
        answer = client.post(peer, HELLO_PATH, {"hub": me.name, "peer": name,
                                                "key": me.key.public.text})  # fmt: skip
        if answer.get("hub") != name or answer.get("peer") != me.name:
            raise Conflict(f"peer {name} answered the hello for {answer.get('peer')!r}")
        self.peers.record_hello(name, self._clock(), inbound=False)
        return self.get(name)

    def hello_received(self, verified: Verified, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a verified hello from a peer; InvalidInput if it was meant for another hub."""
        me = self.require_identity()
        if payload.get("peer") != me.name:
            raise InvalidInput(f"peer must be this hub's name {me.name!r}, "
                               f"got {payload.get('peer')!r:.80}")  # fmt: skip
        self.peers.record_hello(verified.peer.name, self._clock(), inbound=True)
        return {"hub": me.name, "peer": verified.peer.name, "key_id": me.key.key_id}


def peer_json(peer: Peer) -> dict[str, Any]:
    """A peer as the API and the command line show it."""
    t = peer.terms
    return {
        "name": peer.name,
        "url": peer.url,
        "key": peer.public_key,
        "key_id": peer.key_id,
        "state": peer.state.value,
        "materials": list(t.materials),
        "kinds": list(t.kinds),
        "max_in_flight": t.max_in_flight,
        "charges_credits": t.charges_credits,
        "confirmed": peer.confirmed,
        "hello_in_at": peer.hello_in_at.isoformat() if peer.hello_in_at else None,
        "hello_out_at": peer.hello_out_at.isoformat() if peer.hello_out_at else None,
        "created_at": peer.created_at.isoformat(),
    }
