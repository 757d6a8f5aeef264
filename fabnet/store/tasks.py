"""Task transitions in the database: each event is applied once, in as few transactions as
the caller's batch allows.

``apply_event`` moves one task in one transaction; ``apply_events`` a batch of bus events in
one transaction with a SAVEPOINT per item; ``offer_queued`` and the sweeps lock the rows they
take ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several dispatcher processes sharing one
database never take the same task (on SQLite the write transaction's ``BEGIN IMMEDIATE`` lets
one writer in at a time). The per-task work is in ``transitions.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fabnet.core.events import (
    LeaseExpired,
    MachineWentOffline,
    OfferTimedOut,
    TaskEvent,
    TaskOffered,
)
from fabnet.core.matching import TaskRequest
from fabnet.core.states import (
    LEASED_TASK_STATES,
    IgnoreReason,
    MachineState,
    TaskState,
)
from fabnet.core.tasks import Ignored, Outcome, TaskSnapshot, Transition
from fabnet.core.timeutil import require_utc
from fabnet.errors import FabnetError, InvalidInput, NotFound
from fabnet.store.columns import names_a_peer
from fabnet.store.convert import snapshot_from_row
from fabnet.store.database import Database
from fabnet.store.job_counts import CountDeltas
from fabnet.store.models import AttemptRow, EventRow, MachineRow, TaskRow
from fabnet.store.queue_reads import match_requests, queued_query
from fabnet.store.transitions import apply_locked, attempt_rows

log = logging.getLogger(__name__)

# Tasks one sweep (expire_leases / expire_offers) moves in its one transaction; the rest wait
# for the next call, so a backlog never makes one transaction hold thousands of row locks.
SWEEP_BATCH = 1000


Match = Callable[[list[TaskRequest]], Iterable[tuple[str, TaskOffered]]]


@dataclass(frozen=True)
class Due:
    """What a dispatcher's tick may have to do, from one read (``Tasks.due``): the earliest
    lease and offer expiry (None: no such task), the oldest running claim's start (None: no
    task claimed), and whether any task is queued."""

    lease_until: datetime | None
    offer_until: datetime | None
    claimed_since: datetime | None
    queued: bool


class Tasks:
    """Reading tasks and moving them through their state machine."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, task_id: str) -> TaskSnapshot:
        """The task with its attempts; raises ``NotFound``."""

        def read(s: Session) -> TaskSnapshot:
            row = s.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"task {task_id} not found")
            return snapshot_from_row(row, attempt_rows(s, task_id))

        return self._db.reading(read)

    def find(
        self, job_id: str | None = None, state: TaskState | None = None, limit: int = 1000
    ) -> list[TaskSnapshot]:
        """Tasks of a job and/or in a state, in job order (attempts not loaded)."""
        query = select(TaskRow).order_by(TaskRow.job_id, TaskRow.index).limit(limit)
        if job_id is not None:
            query = query.where(TaskRow.job_id == job_id)
        if state is not None:
            query = query.where(TaskRow.state == state.value)
        return self._db.reading(lambda s: [snapshot_from_row(r, []) for r in s.scalars(query)])

    def count_by_state(self, job_id: str | None = None) -> dict[TaskState, int]:
        """How many tasks are in each state (of one job, or of all), in one GROUP BY."""
        query = select(TaskRow.state, func.count()).group_by(TaskRow.state)
        if job_id is not None:
            query = query.where(TaskRow.job_id == job_id)
        with self._db.read() as s:
            return {TaskState(state): int(n) for state, n in s.execute(query)}

    def queued(self, limit: int = 1000) -> list[TaskRequest]:
        """Up to ``limit`` queued tasks as match requests, in match order.

        Order: priority (high first), deadline (none last), age. Machines that failed a task
        before are in its ``avoid_machines``.
        """
        return self._db.reading(lambda s: match_requests(s, list(s.scalars(queued_query(limit)))))

    def claimed_unassigned(self, older_than: datetime, limit: int) -> list[TaskSnapshot]:
        """Tasks claimed (accepted, no G-code assigned yet) at or before ``older_than``,
        oldest claim first, with their attempts: work a dispatcher that died left undone.
        A task held by a peer hub (``PEER_PREFIX``) is not: the peer makes it."""
        older_than = require_utc("older_than", older_than)
        query = (
            select(TaskRow)
            .join(
                AttemptRow,
                (AttemptRow.task_id == TaskRow.id)
                & (AttemptRow.offer_no == TaskRow.offer_no)
                & AttemptRow.ended_at.is_(None),
            )
            .where(
                TaskRow.state == TaskState.CLAIMED.value,
                AttemptRow.started_at <= older_than,
                _not_peer_held(),
            )  # fmt: skip
            .order_by(AttemptRow.started_at, TaskRow.id)
            .limit(limit)
        )

        def read(s: Session) -> list[TaskSnapshot]:
            rows = list(s.scalars(query))
            attempts: dict[str, list[AttemptRow]] = {}
            found = select(AttemptRow).where(AttemptRow.task_id.in_([r.id for r in rows]))
            for a in s.scalars(found):
                attempts.setdefault(a.task_id, []).append(a)
            return [snapshot_from_row(r, attempts.get(r.id, [])) for r in rows]

        return self._db.reading(read)

    def due(self) -> Due:
        """One cheap read (four index lookups in one statement) telling a dispatcher's tick
        whether a sweep, a recovery or an offer round can find anything, so an idle
        dispatcher does not open write transactions for nothing several times a second."""
        leased = [state.value for state in LEASED_TASK_STATES]
        lease = select(func.min(TaskRow.lease_until)).where(TaskRow.state.in_(leased))
        offer = select(func.min(TaskRow.offer_until)).where(
            TaskRow.state == TaskState.OFFERED.value
        )
        claim = (
            select(func.min(AttemptRow.started_at))
            .join(
                TaskRow,
                (AttemptRow.task_id == TaskRow.id) & (AttemptRow.offer_no == TaskRow.offer_no),
            )  # fmt: skip
            .where(
                TaskRow.state == TaskState.CLAIMED.value,
                AttemptRow.ended_at.is_(None),
                _not_peer_held(),
            )  # fmt: skip
        )
        queued = select(TaskRow.id).where(TaskRow.state == TaskState.QUEUED.value).limit(1)
        query = select(
            lease.scalar_subquery(),
            offer.scalar_subquery(),
            claim.scalar_subquery(),
            queued.exists(),
        )

        def read(s: Session) -> Due:
            row = s.execute(query).one()
            lease_at, offer_at, claim_at, any_queued = row
            return Due(_maybe_aware(lease_at), _maybe_aware(offer_at), _maybe_aware(claim_at),
                       bool(any_queued))  # fmt: skip

        return self._db.reading(read)

    def busy_machines(self, machine_ids: Collection[str]) -> set[str]:
        """Those of ``machine_ids`` holding a task (an open offer, a claim, or work under
        way), in one read: what a dispatcher whose own view of a machine is stale (another
        dispatcher offered it something) asks before offering."""
        if not machine_ids:
            return set()
        open_states = [TaskState.OFFERED.value, *(state.value for state in LEASED_TASK_STATES)]
        query = (
            select(TaskRow.machine_id)
            .where(TaskRow.machine_id.in_(list(machine_ids)), TaskRow.state.in_(open_states))
            .distinct()
        )
        return self._db.reading(lambda s: {m for m in s.scalars(query) if m is not None})

    def offered_at(self, task_ids: Collection[str]) -> dict[str, datetime]:
        """When each task's latest offer was made (its last ``offered`` event), in one read for
        all of them: where offer->done starts (the attempt begins later, at the claim)."""
        if not task_ids:
            return {}
        query = (
            select(EventRow.task_id, func.max(EventRow.at))
            .where(
                EventRow.task_id.in_(list(task_ids)),
                EventRow.to_state == TaskState.OFFERED.value,
            )
            .group_by(EventRow.task_id)
        )
        return self._db.reading(lambda s: {t: _aware(at) for t, at in s.execute(query)})

    def apply_event(self, task_id: str, event: TaskEvent, now: datetime) -> Outcome:
        """Apply ``event`` to task ``task_id`` at ``now`` in one transaction.

        Returns the core's ``Transition`` or ``Ignored``; a duplicate event id changes
        nothing. Raises ``NotFound`` for an unknown task.
        """
        now = require_utc("now", now)
        try:
            with self._db.write() as s:
                counts = CountDeltas()
                outcome = apply_locked(s, task_id, event, now, counts)
                counts.write(s)
                return outcome
        except IntegrityError:
            # Only reachable if another transaction recorded this event id first.
            log.info("event %s for task %s raced a duplicate", event.event_id, task_id)
            return Ignored(event.event_id, IgnoreReason.DUPLICATE, "recorded concurrently")

    def apply_events(
        self, items: Sequence[tuple[str, TaskEvent]], now: datetime
    ) -> list[Outcome | FabnetError]:
        """Apply each (task id, event), all in one transaction, each in a SAVEPOINT; a task's
        events in their order (tasks in id order, so concurrent batches lock rows alike).

        Slot ``i`` of the result is item ``i``'s ``Transition`` or ``Ignored``, or the
        ``FabnetError`` (``NotFound``, ``InvalidInput``, ``Conflict``) it raised: that item
        alone is rolled back, the others commit. Any other error rolls back the whole batch.
        """
        now = require_utc("now", now)
        results: dict[int, Outcome | FabnetError] = {}
        # Task rows are locked in task id order (a stable sort keeps each task's own events in
        # their order): two dispatchers' batches then never wait for each other in a cycle.
        order = sorted(range(len(items)), key=lambda i: items[i][0])
        if not order:
            return []
        with self._db.write() as s:
            counts = CountDeltas()
            for i in order:
                task_id, event = items[i]
                item = CountDeltas()
                try:
                    with s.begin_nested():
                        results[i] = apply_locked(s, task_id, event, now, item)
                except FabnetError as exc:
                    results[i] = exc
                    continue
                except IntegrityError as exc:
                    results[i] = _integrity_outcome(s, task_id, event, exc)
                    continue
                counts.merge(item)
            counts.write(s)
        return [results[i] for i in range(len(items))]

    def offer_queued(self, limit: int, now: datetime, match: Match) -> list[Transition]:
        """Offer queued tasks in one transaction: take up to ``limit`` in ``queued()`` order
        (on PostgreSQL locked ``FOR UPDATE SKIP LOCKED``: rows another dispatcher holds are
        passed over), hand them to ``match``, apply each ``(task_id, TaskOffered)`` it returns.

        Returns the transitions made. Raises ``InvalidInput`` (nothing offered) if ``match``
        names a task it was not given or returns another event than ``TaskOffered``.
        """
        now = require_utc("now", now)
        if limit < 1:
            return []
        with self._db.write() as s:
            rows = list(s.scalars(queued_query(limit).with_for_update(skip_locked=True)))
            if not rows:
                return []
            by_id = {r.id: r for r in rows}
            counts = CountDeltas()
            done: list[Transition] = []
            for task_id, event in match(match_requests(s, rows)):
                if task_id not in by_id:
                    raise InvalidInput(f"match offered task {task_id}, which it was not given")
                if not isinstance(event, TaskOffered):
                    raise InvalidInput(f"match returned {type(event).__name__}, not TaskOffered")
                out = apply_locked(s, task_id, event, now, counts, by_id[task_id])
                if isinstance(out, Transition):
                    done.append(out)
            counts.write(s)
        return done

    def expire_leases(self, now: datetime) -> list[Transition]:
        """Requeue (or fail) tasks whose lease ran out at ``now``, up to ``SWEEP_BATCH``, in
        one transaction; rows another dispatcher has locked are skipped (it expires them)."""
        now = require_utc("now", now)
        leased = [state.value for state in LEASED_TASK_STATES]
        where = (TaskRow.state.in_(leased), TaskRow.lease_until <= now)
        return self._sweep(where, LeaseExpired, now)

    def expire_offers(self, now: datetime) -> list[Transition]:
        """Requeue offered tasks whose offer lapsed at ``now``, as ``expire_leases`` does."""
        now = require_utc("now", now)
        where = (TaskRow.state == TaskState.OFFERED.value, TaskRow.offer_until <= now)
        return self._sweep(where, OfferTimedOut, now)

    def machine_offline(self, machine_id: str, now: datetime) -> list[Transition]:
        """Record ``machine_id`` offline and requeue the tasks it was offered or held, in one
        transaction. Raises ``NotFound`` for an unknown machine."""
        now = require_utc("now", now)
        with self._db.write() as s:
            machine = s.get(MachineRow, machine_id)
            if machine is None:
                raise NotFound(f"machine {machine_id} not found")
            machine.state = MachineState.OFFLINE.value
            query = (
                select(TaskRow)
                .where(TaskRow.machine_id == machine_id)
                .order_by(TaskRow.id)
                .with_for_update()
            )
            rows = list(s.scalars(query))
            return _apply_to_rows(s, rows, lambda: MachineWentOffline(machine_id=machine_id), now)

    def _sweep(
        self,
        where: tuple[Any, ...],
        make: type[LeaseExpired] | type[OfferTimedOut],
        now: datetime,
    ) -> list[Transition]:
        query = (
            select(TaskRow)
            .where(*where)
            .order_by(TaskRow.id)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        )
        with self._db.write() as s:
            return _apply_to_rows(s, list(s.scalars(query)), make, now)


def _apply_to_rows(
    s: Session, rows: list[TaskRow], make: Callable[[], TaskEvent], now: datetime
) -> list[Transition]:
    """Apply a fresh hub event ``make()`` to each locked row; the transitions made."""
    counts = CountDeltas()
    done: list[Transition] = []
    for row in rows:
        out = apply_locked(s, row.id, make(), now, counts, row)
        if isinstance(out, Transition):
            done.append(out)
    counts.write(s)
    return done


def _maybe_aware(at: datetime | str | None) -> datetime | None:
    """A scalar subquery's timestamp (SQLite hands back text: it loses the column type)."""
    if at is None:
        return None
    return _aware(datetime.fromisoformat(at) if isinstance(at, str) else at)


def _aware(at: datetime) -> datetime:
    """An aggregate's timestamp as aware UTC (stored naive UTC; some drivers skip the type)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _not_peer_held() -> Any:
    """Tasks not held by a peer hub: a peer's claim has no G-code for this hub to make."""
    return ~names_a_peer(TaskRow.machine_id)


def _integrity_outcome(
    s: Session, task_id: str, event: TaskEvent, exc: IntegrityError
) -> Outcome | FabnetError:
    """A batch item whose rows broke a constraint (its savepoint is rolled back): a duplicate
    if another transaction recorded the event id meanwhile, else bad input naming the cause."""
    if s.get(EventRow, event.event_id) is not None:
        log.info("event %s for task %s raced a duplicate", event.event_id, task_id)
        return Ignored(event.event_id, IgnoreReason.DUPLICATE, "recorded concurrently")
    return InvalidInput(f"event {event.event_id} for task {task_id} not recorded: {exc.orig}")
