"""Tables of federation (issue 12): the peer hubs this hub has agreed to share work with, the
nonces of signed requests recently accepted from them (replay protection) and the latest
capacity summary each peer advertised.

The tables sit on the store's ``Base`` but are created by ``fabnet.store.peers`` itself (under
the schema lock), so a database made by an older fabnet gains them on first use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.store.models import Base

HUB_NAME = String(64)
NONCE = String(64)


class PeerRow(Base):
    """One peer hub: where it answers, its public key, what this hub shares with it."""

    __tablename__ = "federation_peers"
    name: Mapped[str] = mapped_column(HUB_NAME, primary_key=True)
    url: Mapped[str] = mapped_column(String(400))
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw Ed25519 key
    key_id: Mapped[str] = mapped_column(String(16))
    materials: Mapped[list[str]]  # empty: any material
    kinds: Mapped[list[str]]  # machine kinds shared: fdm, cnc
    max_in_flight: Mapped[int] = mapped_column(Integer)
    charges_credits: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))  # PeerState
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    hello_in_at: Mapped[datetime | None]  # the peer's last accepted hello to this hub
    hello_out_at: Mapped[datetime | None]  # this hub's last hello the peer confirmed


class PeerNonceRow(Base):
    """A nonce accepted from a peer, kept until its request could no longer pass the clock
    check (``expires_at``); a second request with it is a replay."""

    __tablename__ = "federation_nonces"
    peer: Mapped[str] = mapped_column(HUB_NAME, primary_key=True)
    nonce: Mapped[str] = mapped_column(NONCE, primary_key=True)
    expires_at: Mapped[datetime]

    __table_args__ = (Index("ix_federation_nonces_expires_at", "expires_at"),)


class PeerCapacityRow(Base):
    """The latest capacity summary a peer advertised (``fabnet.federation.capacity``), as it
    sent it, with the time it computed it (its age decides whether it is still believed) and
    the time this hub received it."""

    __tablename__ = "federation_capacity"
    peer: Mapped[str] = mapped_column(HUB_NAME, primary_key=True)
    summary: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime]
    received_at: Mapped[datetime]


TABLES = (PeerRow.__table__, PeerNonceRow.__table__, PeerCapacityRow.__table__)
