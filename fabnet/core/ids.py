"""Identifiers: every id in fabnet is a uuid4 in hex (32 lowercase hex digits)."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """Return a fresh uuid4 hex id, e.g. for a task, a job or an event."""
    return uuid.uuid4().hex


# A peer hub (issue 12) is named "peer:<hub>" wherever this hub records it: the pseudo-machine
# that holds a task the peer makes, the requester of work made here for it, and its ledger
# account. Agent and user names cannot hold a ':', so none of these can be forged from outside.
PEER_PREFIX = "peer:"


def peer_named(name: str | None) -> str | None:
    """The peer hub ``name`` names (``peer:<hub>`` -> ``<hub>``); None for any other name."""
    if not name or not name.startswith(PEER_PREFIX):
        return None
    return name[len(PEER_PREFIX) :] or None
