"""The account tables: users, API tokens, dashboard sessions, broker identities and recorded machine changes;
and the indexes the web listings need on the job table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.store.models import ID, PEER_ID, SHA256, Base, JobRow


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # the login; jobs' requester
    full_name: Mapped[str] = mapped_column(String(200))
    password_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    password_hash: Mapped[bytes] = mapped_column(LargeBinary(64))
    roles: Mapped[list[str]]
    maker_ids: Mapped[list[str]]
    created_at: Mapped[datetime]


class TokenRow(Base):
    """An API token: only the sha256 of the raw token is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(SHA256, unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebSessionRow(Base):
    """A dashboard log-in: the cookie carries a random id, only its sha256 is kept; log-out
    ends the row, so a copied cookie stops working with it."""

    __tablename__ = "web_sessions"
    id_sha256: Mapped[str] = mapped_column(SHA256, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class BrokerAccountRow(Base):
    """An agent's broker identity; the password is kept only as Mosquitto's ``$7$`` hash."""

    __tablename__ = "broker_accounts"
    agent_id: Mapped[str] = mapped_column(PEER_ID, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class MachineChangeRow(Base):
    """A policy / loaded-material change asked for through the API (not pushed to the agent)."""

    __tablename__ = "machine_changes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    machine_id: Mapped[str] = mapped_column(PEER_ID, index=True)
    user_name: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    change: Mapped[dict[str, Any]]


# Newest-first job pages, all and per requester (the web API pages through them).
Index("ix_jobs_created", JobRow.created_at)
Index("ix_jobs_requester_created", JobRow.requester, JobRow.created_at)
