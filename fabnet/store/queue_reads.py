"""Reading the queue for an offer round: which queued tasks come first, and each as the
matcher's request (with the machines that failed it before, to avoid)."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fabnet.core.matching import TaskRequest
from fabnet.core.states import AttemptCause, TaskState
from fabnet.store.convert import request_from_row
from fabnet.store.models import AttemptRow, TaskRow


def queued_query(limit: int) -> Select[TaskRow]:
    """Queued tasks in the order they are offered: priority, deadline, age, id."""
    return (
        select(TaskRow)
        .where(TaskRow.state == TaskState.QUEUED.value)
        .order_by(
            TaskRow.priority.desc(),
            TaskRow.deadline.asc().nulls_last(),
            TaskRow.created_at,
            TaskRow.id,
        )
        .limit(limit)
    )


def match_requests(s: Session, rows: list[TaskRow]) -> list[TaskRequest]:
    """``rows`` as match requests, each avoiding the machines that failed it before."""
    failed = s.execute(
        select(AttemptRow.task_id, AttemptRow.machine_id).where(
            AttemptRow.task_id.in_([r.id for r in rows]),
            AttemptRow.cause == AttemptCause.FAILED.value,
        )
    )
    avoid: dict[str, set[str]] = {}
    for task_id, machine_id in failed:
        avoid.setdefault(task_id, set()).add(machine_id)
    return [request_from_row(r, frozenset(avoid.get(r.id, ()))) for r in rows]
