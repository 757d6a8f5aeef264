"""The signed endpoints for work between hubs (issue 12), path under ``/federation/v1`` ->
handler: one line per capability, so the blueprint (``federation.make_peer_endpoints``)
stays the one place requests are verified and answers signed."""

from __future__ import annotations

from fabnet.web.api.context import ApiContext
from fabnet.web.api.federation import PeerHandler


def peer_handlers(ctx: ApiContext) -> dict[str, PeerHandler]:
    """The work endpoints a hub serves to its peers."""
    return {}
