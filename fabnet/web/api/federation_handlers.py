"""The signed endpoints for work between hubs (issue 12), path under ``/federation/v1`` ->
handler: one line per capability, so the blueprint (``federation.make_peer_endpoints``)
stays the one place requests are verified and answers signed."""

from __future__ import annotations

from fabnet.federation import wire
from fabnet.federation.intake import Intake
from fabnet.federation.results import ResultsInbox
from fabnet.web.api.context import ApiContext
from fabnet.web.api.federation import PeerHandler, peer_service


def peer_lease_s(ctx: ApiContext) -> float:
    """The lease a peer's report extends: the hub's ``[federation] peer_lease_s``."""
    return ctx.federation.peer_lease_s if ctx.federation else wire.DEFAULT_PEER_LEASE_S


def peer_handlers(ctx: ApiContext) -> dict[str, PeerHandler]:
    """The work endpoints a hub serves to its peers."""
    return {
        "/tasks": Intake(ctx.service, peer_service(ctx), ctx.clock).receive,
        "/reports": ResultsInbox(ctx.store, ctx.clock, peer_lease_s=peer_lease_s(ctx)).receive,
    }
