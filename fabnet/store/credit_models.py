"""The credit tables (issue 11): postings and their legs (balances are sums of legs, never
stored), accounts (rows to lock while a hold checks a balance), reviews and rejections of
done tasks, machine prices and the network's terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.store.models import ID, PEER_ID, Base

ACCOUNT = String(250)


class CreditAccountRow(Base):
    """An account that ever had a leg; locked ``FOR UPDATE`` while a hold checks its balance,
    so two submits by one requester cannot both spend the same credits."""

    __tablename__ = "credit_accounts"
    account: Mapped[str] = mapped_column(ACCOUNT, primary_key=True)
    created_at: Mapped[datetime]


class PostingRow(Base):
    """One balanced movement; ``key`` is unique, so the same movement is posted once."""

    __tablename__ = "credit_postings"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(index=True)
    job_id: Mapped[str | None] = mapped_column(ID, index=True)
    task_id: Mapped[str | None] = mapped_column(ID, index=True)
    memo: Mapped[str] = mapped_column(String(500))


class LegRow(Base):
    __tablename__ = "credit_legs"
    __table_args__ = (Index("ix_credit_legs_account", "account", "posting_id"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    posting_id: Mapped[str] = mapped_column(ForeignKey("credit_postings.id"), index=True)
    account: Mapped[str] = mapped_column(ForeignKey("credit_accounts.account"))
    amount_mc: Mapped[int] = mapped_column(BigInteger)


class ReviewRow(Base):
    """A done task's settlement: accepted (paid), disputed or voided (``core.credits.Review``)."""

    __tablename__ = "task_reviews"
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ID, index=True)
    machine_id: Mapped[str] = mapped_column(PEER_ID, index=True)
    state: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime]
    detail: Mapped[str] = mapped_column(String(500))


class RejectionRow(Base):
    """A done task sent back by its requester, against the machine that made it; one per
    task (unique). The production ledger row of the rejected part moves here."""

    __tablename__ = "task_rejections"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), unique=True)
    job_id: Mapped[str] = mapped_column(ID, index=True)
    machine_id: Mapped[str] = mapped_column(PEER_ID, index=True)
    maker_id: Mapped[str] = mapped_column(PEER_ID)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500))
    rejected_by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    grams: Mapped[float]
    machine_hours: Mapped[float]


class MachinePriceRow(Base):
    """A maker's price for one machine; ``per_kg_mc`` is {material: mc per kg}."""

    __tablename__ = "machine_prices"
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), primary_key=True)
    per_hour_mc: Mapped[int] = mapped_column(BigInteger)
    per_kg_mc: Mapped[dict[str, Any]]
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class NetworkTermsRow(Base):
    """The operator's fee and currency (one row, id 1); absent: the config's ``[economy]``."""

    __tablename__ = "network_terms"
    id: Mapped[int] = mapped_column(primary_key=True)
    fee_bp: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    credit_value_milli: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]
