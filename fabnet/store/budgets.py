"""Budgets of queued tasks (issue 11): what a budgeted job has left in escrow and how many
of its tasks still share it; read by the matcher's budget guard (hub/economy/budget.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fabnet.core import credits as cr
from fabnet.store.credit_models import LegRow, PostingRow
from fabnet.store.database import Database
from fabnet.store.models import JobRow, TaskRow
from fabnet.store.reviews import SETTLED_STATES


@dataclass(frozen=True)
class TaskBudget:
    """What a budgeted job has left for one of its queued tasks: the escrow's balance and
    how many of its tasks are still to be paid (neither paid, failed nor cancelled)."""

    task_id: str
    job_id: str
    design_id: str
    material: str
    parts: int
    remaining_mc: int
    tasks_left: int

    @property
    def per_task_mc(self) -> int:
        return cr.task_budget_mc(self.remaining_mc, self.tasks_left)


def task_budgets(db: Database, task_ids: Sequence[str]) -> dict[str, TaskBudget]:
    """The budgets of those of ``task_ids`` whose job holds one, in one read transaction of
    four statements however many jobs the tasks belong to (an offer round's cost)."""
    if not task_ids:
        return {}

    def read(s: Session) -> dict[str, TaskBudget]:
        rows = list(
            s.execute(
                select(TaskRow.id, TaskRow.job_id, JobRow.design_id, TaskRow.material,
                       TaskRow.parts)
                .join(JobRow, JobRow.id == TaskRow.job_id)
                .where(TaskRow.id.in_(list(task_ids)))
            )
        )  # fmt: skip
        jobs = {r.job_id for r in rows}
        held = set(
            s.scalars(
                select(PostingRow.job_id).where(
                    PostingRow.kind == cr.PostingKind.HOLD.value, PostingRow.job_id.in_(jobs)
                )
            )
        )
        escrows = {cr.escrow_account(j): j for j in held if j is not None}
        if not escrows:  # no budgeted job among them: two statements
            return {}
        remaining = dict.fromkeys(escrows.values(), 0)
        for account, total in s.execute(
            select(LegRow.account, func.sum(LegRow.amount_mc))
            .where(LegRow.account.in_(list(escrows)))
            .group_by(LegRow.account)
        ):
            remaining[escrows[account]] = int(total or 0)
        paid = select(PostingRow.task_id).where(
            PostingRow.kind == cr.PostingKind.PAYMENT.value,
            PostingRow.job_id.in_(list(remaining)),
            PostingRow.task_id.is_not(None),
        )
        left = dict.fromkeys(remaining, 0)
        for job_id, count in s.execute(
            select(TaskRow.job_id, func.count())
            .where(
                TaskRow.job_id.in_(list(remaining)),
                TaskRow.state.not_in(list(SETTLED_STATES)),
                TaskRow.id.not_in(paid),
            )
            .group_by(TaskRow.job_id)
        ):
            left[job_id] = int(count)
        return {
            r.id: TaskBudget(r.id, r.job_id, r.design_id, r.material, r.parts,
                             remaining[r.job_id], left[r.job_id])
            for r in rows
            if r.job_id in held
        }  # fmt: skip

    return db.reading(read)
