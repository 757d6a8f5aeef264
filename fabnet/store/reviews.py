"""Acceptance in the database (issue 11): a done task is accepted (paid, once), rejected back
to the queue (once, recorded against its machine), disputed, or voided by an operator; a job
whose tasks are all settled gets what is left of its escrow back.

Each decision is one transaction that locks the task row first, so two clicks, the hub's
auto-accept and a requester deciding at the same moment serialise; the payment's key
``pay:<task_id>`` is unique besides, so a task is never paid twice.

Federation (issue 12): a task made at peer hub B is held by pseudo-machine ``peer:B``; its
acceptance pays what B charged (recorded by ``fabnet.federation.settlement``) plus this hub's
fee into ``hub:federation``. A job a peer asked for (requester ``peer:A``) is paid from the
peer's account and accepted by the federation reporter, never by the auto-accept tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, literal, or_, select
from sqlalchemy.orm import Session

from fabnet.core import credits as cr
from fabnet.core.events import TaskRejected
from fabnet.core.states import TaskState
from fabnet.core.tasks import Ignored, Transition
from fabnet.core.timeutil import require_utc
from fabnet.errors import Conflict, NotFound
from fabnet.store.columns import names_a_peer
from fabnet.store.credit_models import LegRow, PostingRow, RejectionRow, ReviewRow
from fabnet.store.credits import (
    balance_in,
    latest_amount_in,
    lock_account,
    owner_account,
    post_in,
    posting_key_exists,
)
from fabnet.store.database import Database
from fabnet.store.job_counts import CountDeltas
from fabnet.store.models import JobRow, LedgerRow, TaskRow
from fabnet.store.prices import price_in, terms_in
from fabnet.store.transitions import apply_locked

DETAIL_MAX = 500
SETTLED_STATES = frozenset({TaskState.FAILED.value, TaskState.CANCELLED.value})
ESCROW_PREFIX = cr.escrow_account("")  # "escrow:", the job id follows


@dataclass(frozen=True)
class Settlement:
    """What accepting a task did: the payment posted (None: nothing owed, or ``already``
    accepted before, e.g. a second click)."""

    task_id: str
    job_id: str
    review: cr.Review
    payment: cr.Posting | None
    already: bool = False


@dataclass(frozen=True)
class Rejection:
    task_id: str
    job_id: str
    machine_id: str
    maker_id: str
    reason: cr.RejectReason
    detail: str
    rejected_by: str
    at: datetime


def _locked_task(s: Session, task_id: str) -> TaskRow:
    row = s.get(TaskRow, task_id, with_for_update=True)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return row


def _ledger(s: Session, task_id: str) -> LedgerRow:
    row = s.scalar(select(LedgerRow).where(LedgerRow.task_id == task_id))
    if row is None:
        raise Conflict(f"task {task_id} has no production record to pay for")
    return row


class Reviews:
    """Accept, reject, dispute, resolve; what is due for auto-accept; settling jobs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def accept(
        self,
        task_id: str,
        by: str,
        now: datetime,
        terms: cr.Terms,
        default_per_kg: Mapping[str, int],
        *,
        resolving: bool = False,
        free: bool = False,
    ) -> Settlement:
        """Accept done task ``task_id`` and pay its maker from the job's escrow (or, for a job
        without a budget, from the requester), at the machine's price for the grams and hours
        recorded, plus the fee, never beyond what is left of the cap; ``free``: accept it and
        pay nothing (a peer's -NC part, or work for a peer that is not charged). A part made
        at a peer hub costs what the peer charged for it (0 while none is recorded). Accepting
        twice pays once. Raises ``NotFound``, ``Conflict`` (not done, disputed unless
        ``resolving``, voided)."""
        now = require_utc("now", now)
        with self._db.write() as s:
            task = _locked_task(s, task_id)
            review = s.get(ReviewRow, task_id)
            if review is not None:
                if review.state == cr.Review.ACCEPTED.value:
                    return Settlement(task_id, task.job_id, cr.Review.ACCEPTED, None, True)
                if review.state == cr.Review.VOIDED.value:
                    raise Conflict(f"task {task_id} was voided by an operator: it is not paid")
                if not resolving:
                    raise Conflict(f"task {task_id} is disputed: an operator decides")
            if task.state != TaskState.DONE.value:
                raise Conflict(f"task {task_id} is {task.state}: only a done task is accepted")
            posting = None if free else self._pay(s, task, now, terms, default_per_kg)
            machine_id = _ledger(s, task_id).machine_id
            accepted = cr.Review.ACCEPTED.value
            if review is None:
                s.add(ReviewRow(task_id=task_id, job_id=task.job_id, machine_id=machine_id,
                                state=accepted, decided_by=by, decided_at=now, detail=""))  # fmt: skip
            else:  # an operator resolving a dispute
                review.state, review.decided_by, review.decided_at = accepted, by, now
            return Settlement(task_id, task.job_id, cr.Review.ACCEPTED, posting)

    def _pay(
        self,
        s: Session,
        task: TaskRow,
        now: datetime,
        terms: cr.Terms,
        default_per_kg: Mapping[str, int],
    ) -> cr.Posting | None:
        work = _ledger(s, task.id)
        job = s.get(JobRow, task.job_id)
        if job is None:
            raise NotFound(f"job {task.job_id} not found")
        fee_bp = terms_in(s, terms).fee_bp
        peer = cr.peer_of_account(work.machine_id)  # pseudo-machine "peer:B" = account "peer:B"
        if peer is not None:
            maker = cr.FEDERATION_ACCOUNT
            # the charge for the part accepted: the newest the peer made (a rejected one
            # before it stays the clearing account's cost)
            owed = latest_amount_in(s, cr.PostingKind.PEER_WORK, task.id, cr.peer_account(peer))
            maker_price = owed or 0
        else:
            maker = owner_account(s, work.maker_id)
            price = price_in(s, work.machine_id) or cr.MachinePrice(work.machine_id)
            per_kg = price.per_kg_mc.get(work.material, default_per_kg.get(work.material, 0))
            maker_price = cr.price_mc(price.per_hour_mc, per_kg, work.machine_hours, work.grams)
        escrow = cr.escrow_account(job.id)
        held = posting_key_exists(s, cr.hold_key(job.id))
        remaining: int | None = None
        if held:
            lock_account(s, escrow, now)  # two tasks of one job never spend one remainder
            remaining = balance_in(s, escrow)
        payer = escrow if held else cr.requester_account(job.requester)
        posting = cr.payment(task.id, job.id, payer, maker, maker_price, fee_bp, remaining, now)
        if posting is None or not post_in(s, posting):
            return None
        return posting

    def reject(
        self, task_id: str, reason: cr.RejectReason, detail: str, by: str, now: datetime
    ) -> Transition:
        """Send done task ``task_id`` back to the queue, once; the rejection is recorded
        against the machine that made it and the part's production record moves with it.
        Raises ``Conflict`` when the task is not done, was accepted, disputed or voided, or was
        rejected before (then it is accepted or disputed)."""
        now = require_utc("now", now)
        with self._db.write() as s:
            task = _locked_task(s, task_id)
            review = s.get(ReviewRow, task_id)
            if review is not None:
                raise Conflict(f"task {task_id} is {review.state}: it cannot be rejected")
            if s.scalar(select(RejectionRow.id).where(RejectionRow.task_id == task_id)):
                raise Conflict(
                    f"task {task_id} was rejected once already: accept it or open a dispute"
                )
            if task.state != TaskState.DONE.value:
                raise Conflict(f"task {task_id} is {task.state}: only a done task is rejected")
            work = _ledger(s, task_id)
            counts = CountDeltas()
            event = TaskRejected(reason=reason.value, rejected_by=by)
            out = apply_locked(s, task_id, event, now, counts, task)
            if isinstance(out, Ignored):
                raise Conflict(f"task {task_id} cannot be rejected: {out.detail}")
            s.add(
                RejectionRow(
                    task_id=task_id,
                    job_id=task.job_id,
                    machine_id=work.machine_id,
                    maker_id=work.maker_id,
                    reason=reason.value,
                    detail=detail[:DETAIL_MAX],
                    rejected_by=by,
                    at=now,
                    grams=work.grams,
                    machine_hours=work.machine_hours,
                )
            )
            s.delete(work)  # the part is made again: its new completion writes a new record
            counts.write(s)
            return out

    def dispute(self, task_id: str, by: str, detail: str, now: datetime) -> None:
        """Hold a done task that was rejected once already for an operator to decide (no
        auto-accept while disputed). Raises ``Conflict`` otherwise."""
        now = require_utc("now", now)
        with self._db.write() as s:
            task = _locked_task(s, task_id)
            if task.state != TaskState.DONE.value:
                raise Conflict(f"task {task_id} is {task.state}: only a done task is disputed")
            review = s.get(ReviewRow, task_id)
            if review is not None:
                raise Conflict(f"task {task_id} is already {review.state}")
            if not s.scalar(select(RejectionRow.id).where(RejectionRow.task_id == task_id)):
                raise Conflict(f"task {task_id} was never rejected: reject it (once) instead")
            machine_id = _ledger(s, task_id).machine_id
            s.add(
                ReviewRow(
                    task_id=task_id,
                    job_id=task.job_id,
                    machine_id=machine_id,
                    state=cr.Review.DISPUTED.value,
                    decided_by=by,
                    decided_at=now,
                    detail=detail[:DETAIL_MAX],
                )
            )

    def void(self, task_id: str, by: str, detail: str, now: datetime) -> None:
        """An operator decides a disputed task is not paid (its share of the escrow is
        refunded with the rest of the job's). Raises ``Conflict`` unless it is disputed."""
        now = require_utc("now", now)
        with self._db.write() as s:
            _locked_task(s, task_id)
            review = s.get(ReviewRow, task_id)
            if review is None or review.state != cr.Review.DISPUTED.value:
                state = review.state if review else "not disputed"
                raise Conflict(f"task {task_id} is {state}: only a disputed task is voided")
            review.state = cr.Review.VOIDED.value
            review.decided_by = by
            review.decided_at = now
            review.detail = detail[:DETAIL_MAX]

    def review_of(self, task_id: str) -> cr.Review | None:
        row = self._db.reading(lambda s: s.get(ReviewRow, task_id))
        return None if row is None else cr.Review(row.state)

    def rejections(self, machine_id: str | None = None, limit: int = 1000) -> list[Rejection]:
        """Rejections, newest first, of one machine or all."""
        query = select(RejectionRow).order_by(RejectionRow.at.desc()).limit(limit)
        if machine_id is not None:
            query = query.where(RejectionRow.machine_id == machine_id)

        def read(s: Session) -> list[Rejection]:
            return [
                Rejection(r.task_id, r.job_id, r.machine_id, r.maker_id,
                          cr.RejectReason(r.reason), r.detail, r.rejected_by, r.at)
                for r in s.scalars(query)
            ]  # fmt: skip

        return self._db.reading(read)

    def due(self, done_before: datetime, limit: int = 1000) -> list[str]:
        """Done tasks nobody accepted, rejected again or disputed, made at or before
        ``done_before``, oldest first: the hub accepts them for their requesters. Parts made
        for a peer hub are left out: the federation reporter accepts them, charged or free,
        before it reports them done."""
        query = (
            select(LedgerRow.task_id)
            .join(TaskRow, TaskRow.id == LedgerRow.task_id)
            .join(JobRow, JobRow.id == LedgerRow.job_id)
            .outerjoin(ReviewRow, ReviewRow.task_id == LedgerRow.task_id)
            .where(
                TaskRow.state == TaskState.DONE.value,
                ReviewRow.task_id.is_(None),
                ~names_a_peer(JobRow.requester),
                LedgerRow.finished_at <= require_utc("done_before", done_before),
            )
            .order_by(LedgerRow.finished_at, LedgerRow.task_id)
            .limit(limit)
        )
        return self._db.reading(lambda s: list(s.scalars(query)))

    def unsettled_jobs(self, limit: int = 1000) -> list[str]:
        """Jobs ready for their refund, oldest hold first: a budget held and not refunded,
        something left in escrow, and no task still to make or decide (each failed,
        cancelled, or done and accepted or voided). One read; jobs still at work are not
        listed, so an idle tick writes nothing however many budgeted jobs are queued."""
        refunded = select(PostingRow.job_id).where(
            PostingRow.kind == cr.PostingKind.REFUND.value, PostingRow.job_id.is_not(None)
        )
        settled_reviews = [r.value for r in cr.Review if r.settled]
        open_task = (
            select(TaskRow.id)
            .outerjoin(ReviewRow, ReviewRow.task_id == TaskRow.id)
            .where(
                TaskRow.job_id == PostingRow.job_id,
                TaskRow.state.not_in(SETTLED_STATES),
                or_(
                    TaskRow.state != TaskState.DONE.value,
                    ReviewRow.state.is_(None),
                    ReviewRow.state.not_in(settled_reviews),
                ),
            )
            .correlate(PostingRow)
        )
        left = (
            select(func.sum(LegRow.amount_mc))
            .where(LegRow.account == literal(ESCROW_PREFIX) + PostingRow.job_id)
            .correlate(PostingRow)
            .scalar_subquery()
        )
        query = (
            select(PostingRow.job_id)
            .where(
                PostingRow.kind == cr.PostingKind.HOLD.value,
                PostingRow.job_id.not_in(refunded),
                ~exists(open_task),
                left > 0,
            )
            .order_by(PostingRow.at, PostingRow.job_id)
            .limit(limit)
        )
        return self._db.reading(lambda s: [j for j in s.scalars(query) if j is not None])

    def settle_job(self, job_id: str, now: datetime) -> cr.Posting | None:
        """Refund what is left of the job's escrow once each of its tasks is failed,
        cancelled, accepted or voided; None while some are not (or nothing is left)."""
        now = require_utc("now", now)
        with self._db.write() as s:
            job = s.get(JobRow, job_id)
            if job is None:
                raise NotFound(f"job {job_id} not found")
            escrow = cr.escrow_account(job_id)
            lock_account(s, escrow, now)
            if not posting_key_exists(s, cr.hold_key(job_id)):
                return None
            if posting_key_exists(s, cr.refund_key(job_id)):
                return None
            tasks = s.execute(
                select(TaskRow.state, ReviewRow.state)
                .outerjoin(ReviewRow, ReviewRow.task_id == TaskRow.id)
                .where(TaskRow.job_id == job_id)
            )
            for state, review in tasks:
                if state in SETTLED_STATES:
                    continue
                if state == TaskState.DONE.value and review is not None:
                    if cr.Review(review).settled:
                        continue
                return None
            remaining = balance_in(s, escrow)
            if remaining <= 0:
                return None
            posting = cr.transfer(
                cr.refund_key(job_id),
                cr.PostingKind.REFUND,
                escrow,
                cr.requester_account(job.requester),
                remaining,
                now,
                job_id=job_id,
                memo="what the job did not spend of its cap",
            )
            return posting if post_in(s, posting) else None
