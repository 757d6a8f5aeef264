"""The signed endpoints for work between hubs (issue 12), path under ``/federation/v1`` ->
handler: one line per capability, so the blueprint (``federation.make_peer_endpoints``)
stays the one place requests are verified and answers signed."""

from __future__ import annotations

from fabnet.federation.intake import Intake
from fabnet.federation.results import ResultsInbox
from fabnet.web.api.context import ApiContext
from fabnet.web.api.federation import PeerHandler, peer_service


def peer_handlers(ctx: ApiContext) -> dict[str, PeerHandler]:
    """The work endpoints a hub serves to its peers."""
    return {
        "/tasks": Intake(
            ctx.store, ctx.service, peer_service(ctx), ctx.service.designs, ctx.clock
        ).receive,
        "/reports": ResultsInbox(ctx.store, ctx.clock).receive,
    }
