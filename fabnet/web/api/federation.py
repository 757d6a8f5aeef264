"""Federation over HTTP (issue 12): the operator's routes under ``/api/v1`` (``/peers``: add,
list, pause, resume, remove, hello; ``/federation/key``) and the endpoints peer hubs call,
under ``/federation/v1`` (``hello``, ``capacity``; signed requests only, answered signed;
see ``fabnet.federation.signing``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from fabnet.errors import InvalidInput
from fabnet.federation import signing as sg
from fabnet.federation.advertise import CapacityService
from fabnet.federation.capacity import DEFAULT_MAX_AGE_S, summary_json
from fabnet.federation.inbound import InboundVerifier, Verified
from fabnet.federation.peers import PeerService, check_terms, peer_json
from fabnet.federation.replay import ReplayGuard
from fabnet.store.peers import PeerNonces, Peers
from fabnet.web.api.context import ApiContext
from fabnet.web.auth import OPERATOR
from fabnet.web.openapi import ApiRoutes
from fabnet.web.schemas import Field, ListOf, Schema

PEER_PREFIX = "/federation/v1"
NAME = Field("name", "string", required=True, min_length=1, max_length=64)
ADD = Schema(
    "PeerAdd",
    (
        NAME,
        Field("url", "string", required=True, max_length=400, description="the peer's base URL"),
        Field("key", "string", required=True, max_length=400,
              description="the peer's Ed25519 public key (base64 of 32 bytes, or PEM)"),
        Field("materials", "array", items=Field("material", "string"), default=[],
              description="materials shared (empty: any)"),
        Field("kinds", "array", items=Field("kind", "string", enum=("fdm", "cnc")),
              default=["fdm", "cnc"]),
        Field("max_in_flight", "integer", minimum=0, maximum=10_000, default=10),
        Field("charges_credits", "boolean", default=True),
    ),
)  # fmt: skip
PEER = Schema("Peer", (), open=True, description="a peer hub and what is shared with it")
CAPACITY = Schema(
    "CapacitySummary",
    (),
    open=True,
    description="kinds, materials, idle machines, largest volumes, queued hours",
)
PEER_CAPACITY = Schema(
    "PeerCapacity",
    (),
    open=True,
    description="a peer's latest capacity summary and whether it is fresh",
)
KEY = Schema(
    "FederationKey",
    (
        Field("name", "string", required=True),
        Field("key", "string", required=True),
        Field("key_id", "string", required=True),
    ),
)


def capacity_max_age_s(ctx: ApiContext) -> float:
    """How long a peer's capacity summary is believed: ``[federation] capacity_max_age_s``."""
    return ctx.federation.capacity_max_age_s if ctx.federation else DEFAULT_MAX_AGE_S


def peer_service(ctx: ApiContext) -> PeerService:
    return PeerService(Peers(ctx.store.db), ctx.federation, ctx.clock)


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    service = peer_service(ctx)
    capacities = CapacityService(ctx.store, service, ctx.clock, capacity_max_age_s(ctx))
    ops = (OPERATOR,)

    @routes.route("GET", "/federation/key", summary="This hub's name and public key (operators)",
                  roles=ops, response=KEY)  # fmt: skip
    def federation_key(user: object) -> dict[str, Any]:
        me = service.require_identity()
        return {"name": me.name, "key": me.key.public.text, "key_id": me.key.key_id}

    @routes.route("GET", "/federation/capacity", roles=ops, response=CAPACITY,
                  summary="This hub's capacity summary as advertised to peers (operators)")  # fmt: skip
    def federation_capacity(user: object) -> dict[str, Any]:
        return summary_json(capacities.summary())

    @routes.route("GET", "/peers/capacity", roles=ops, response=ListOf(PEER_CAPACITY),
                  summary="Each peer's latest capacity summary and whether it is still fresh "
                  "(operators)")  # fmt: skip
    def peers_capacity(user: object) -> list[dict[str, Any]]:
        fresh = capacities.fresh()
        return [{"peer": c.peer, "fresh": c.peer in fresh, "received_at": c.received_at.isoformat(),
                 "summary": c.summary} for c in capacities.capacities.list()]  # fmt: skip

    @routes.route("GET", "/peers", summary="Peer hubs (operators)", roles=ops,
                  response=ListOf(PEER))  # fmt: skip
    def peers_list(user: object) -> list[dict[str, Any]]:
        return [peer_json(p) for p in service.list()]

    @routes.route("POST", "/peers", summary="Add a peer hub (operators)", roles=ops, body=ADD,
                  response=PEER, status=201)  # fmt: skip
    def peers_add(user: object, body: dict[str, Any]) -> dict[str, Any]:
        terms = check_terms(body["materials"], body["kinds"], body["max_in_flight"],
                            body["charges_credits"])  # fmt: skip
        return peer_json(service.add(body["name"], body["url"], body["key"], terms))

    @routes.route("POST", "/peers/<name>/pause", summary="Pause a peering (operators)",
                  roles=ops, response=PEER)  # fmt: skip
    def peers_pause(user: object, name: str) -> dict[str, Any]:
        return peer_json(service.pause(name))

    @routes.route("POST", "/peers/<name>/resume", summary="Resume a paused peering (operators)",
                  roles=ops, response=PEER)  # fmt: skip
    def peers_resume(user: object, name: str) -> dict[str, Any]:
        return peer_json(service.resume(name))

    @routes.route("DELETE", "/peers/<name>", summary="Remove a peering (operators)", roles=ops,
                  response=PEER)  # fmt: skip
    def peers_remove(user: object, name: str) -> dict[str, Any]:
        return peer_json(service.remove(name))

    @routes.route("POST", "/peers/<name>/hello", roles=ops, response=PEER,
                  summary="Say a signed hello to the peer: confirms both sides hold each "
                  "other's key (operators)")  # fmt: skip
    def peers_hello(user: object, name: str) -> dict[str, Any]:
        return peer_json(service.hello(name))


PeerHandler = Callable[[Verified, dict[str, Any]], dict[str, Any]]


def make_peer_endpoints(ctx: ApiContext, handlers: Mapping[str, PeerHandler]) -> Blueprint:
    """The blueprint peer hubs call (mount as is: its prefix is ``PEER_PREFIX``): ``hello``
    and ``capacity`` here, and ``handlers`` (path under the prefix -> handler, from
    ``fabnet.web.api.federation_handlers``) for the work exchanged."""
    service = peer_service(ctx)
    skew_s = service.max_skew_s
    nonces = PeerNonces(ctx.store.db)
    verifier = InboundVerifier(service.peers, ReplayGuard(nonces, skew_s), skew_s)
    capacities = CapacityService(ctx.store, service, ctx.clock, capacity_max_age_s(ctx))
    blueprint = Blueprint("federation_v1", __name__, url_prefix=PEER_PREFIX)

    @blueprint.errorhandler(sg.SignatureRefused)
    def refused(exc: sg.SignatureRefused) -> tuple[Response, int]:
        return jsonify({"error": "SignatureRefused", "message": str(exc)}), exc.status

    def signed(handle: PeerHandler) -> Response:
        """Verify the request, hand it to ``handle``, answer signed for its nonce."""
        me = service.require_identity()
        body = request.get_data(cache=True)
        verified = verifier.verify(
            request.method,
            request.script_root + request.path,
            request.query_string.decode("latin-1"),
            sg.lower_headers(request.headers.items()),
            body,
            ctx.clock(),
        )
        answer = handle(verified, _json_object(body))
        raw = json.dumps(answer).encode()
        created = int(ctx.clock().timestamp())
        response = Response(raw, status=200, mimetype="application/json")
        for name, value in sg.sign_response(me.key, me.name, 200, raw, created,
                                            verified.nonce).items():  # fmt: skip
            response.headers[name] = value
        return response

    @blueprint.post("/hello")
    def hello() -> Response:
        return signed(service.hello_received)

    @blueprint.post("/capacity")
    def capacity() -> Response:
        """A peer's capacity summary (``fabnet.federation.advertise``)."""
        return signed(capacities.received)

    for path, handle in handlers.items():
        blueprint.add_url_rule(path, f"peer{path.replace('/', '_')}", _signed_view(signed, handle),
                               methods=["POST"])  # fmt: skip
    return blueprint


def _signed_view(signed: Callable[[PeerHandler], Response],
                 handle: PeerHandler) -> Callable[[], Response]:  # fmt: skip
    return lambda: signed(handle)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidInput("request body must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidInput("request body must be a JSON object")
    return value
