"""The table of foreign tasks (issue 12): the tasks a peer hub (the origin) handed to this hub,
each bound to the local job made for it. A binding is the reporter's outbox: what was last
acknowledged by the origin, and whether it is closed.

Like ``peer_models``, the table sits on the store's ``Base`` but is created on first use by
``fabnet.store.foreign_tasks`` (under the schema lock), so an older database gains it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fabnet.store.models import ID, SHA256, Base
from fabnet.store.peer_models import HUB_NAME

ORIGIN_ID = String(64)  # an id at the origin hub (a uuid4 hex there, checked at intake)
LICENSE = String(200)


class ForeignTaskRow(Base):
    """One origin task held here: one row per (origin hub, origin task id), ever. A later
    transfer of the same task re-binds this row (a higher ``offer_no``, or a fresh local job
    of a higher ``generation`` when the previous one failed or was cancelled here), so two
    receipts of one task can never make two parts: the unique constraint decides between
    processes receiving it at the same moment."""

    __tablename__ = "federation_foreign_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(HUB_NAME)
    origin_task_id: Mapped[str] = mapped_column(ORIGIN_ID)
    origin_job_id: Mapped[str] = mapped_column(ORIGIN_ID)
    offer_no: Mapped[int] = mapped_column(Integer)  # the origin's offer this binding answers
    generation: Mapped[int] = mapped_column(Integer)  # 1, +1 for each fresh local job
    local_job_id: Mapped[str] = mapped_column(ID, index=True)
    local_task_id: Mapped[str] = mapped_column(ID)
    design_id: Mapped[str] = mapped_column(SHA256)
    license: Mapped[str] = mapped_column(LICENSE)  # the design's, as the origin sent it
    started_sent: Mapped[bool] = mapped_column(Boolean)  # STARTED acknowledged for offer_no
    closed_at: Mapped[datetime | None]  # the origin acknowledged a final report (or said stale)
    closed_why: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("origin", "origin_task_id", name="uq_federation_foreign_tasks_origin"),
        Index("ix_federation_foreign_tasks_open", "closed_at", "origin"),
    )


TABLES = (ForeignTaskRow.__table__,)
