"""What peer hubs report about the tasks this hub sent them (issue 12, the origin's side;
``POST /federation/v1/reports``).

Each ``TaskReport`` from peer B becomes the event a machine would send about the task held by
``peer:B`` under the report's offer, with ``event_id = uuid5(REPORT_NAMESPACE,
"<B>:<report_id>")``, so exactly-once, leases and stale answers come from the task state
machine: a report sent twice is applied once (DUPLICATE), one for an offer this hub took back
is STALE (the peer then stops). A report about a task never sent to B, or with figures that
cannot be, is REFUSED and changes nothing: B can never move a task held by another peer or by
a local machine. The whole batch is applied in one transaction.

Every final report (done, failed, released) that is not refused is recorded, counted or not
(``fabnet.store.peer_reports``), and each DONE one is settled with the peer
(``settle_done``), so a late completion is on record and paid for but the part counts once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fabnet.core.events import (
    COMPLETION_GRAMS_FACTOR,
    COMPLETION_GRAMS_SLACK,
    COMPLETION_TIME_FACTOR,
    COMPLETION_TIME_SLACK_S,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskProgressed,
    TaskReleased,
    TaskStarted,
)
from fabnet.core.states import IgnoreReason
from fabnet.core.tasks import Ignored, Outcome, Transition
from fabnet.errors import FabnetError, InvalidInput
from fabnet.federation import wire
from fabnet.federation.inbound import Verified
from fabnet.federation.settlement import settle_peer_work
from fabnet.federation.wire import ReportOutcome, ReportResult, ReportState, TaskReport
from fabnet.store import Store
from fabnet.store.peer_reports import PeerReport, PeerReports, SentTask, tasks_sent_to

log = logging.getLogger(__name__)

REPORT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "fabnet:federation:reports")
# The densest stock a hobby machine works (brass, copper ~8.9 g/cm³): a part cannot weigh
# more than its bounding box of it, times the slack agents get (``core.events``).
MAX_DENSITY_G_MM3 = 9.0e-3


def report_event_id(peer: str, report_id: str) -> str:
    """The id of the event a report of ``peer`` becomes: the same report is one event."""
    return uuid.uuid5(REPORT_NAMESPACE, f"{peer}:{report_id}").hex


def figures_problem(report: TaskReport, task: SentTask) -> str | None:
    """Why a DONE report's grams or machine hours cannot be, None if they can: at most the
    agents' slack (``core.events.completion_problem``) over the part's bounding box of the
    densest stock and over the task's nominal hours. (Finiteness is checked by the wire.)"""
    x, y, z = task.size_mm
    max_grams = (COMPLETION_GRAMS_FACTOR * x * y * z * MAX_DENSITY_G_MM3 * task.parts
                 + COMPLETION_GRAMS_SLACK)  # fmt: skip
    if not 0.0 <= report.grams <= max_grams:
        return f"grams must be 0..{max_grams:.1f} for this task, got {report.grams!r}"
    max_hours = (COMPLETION_TIME_FACTOR * max(task.estimated_hours, 0.0)
                 + COMPLETION_TIME_SLACK_S / 3600.0)  # fmt: skip
    if not 0.0 <= report.machine_hours <= max_hours:
        return (
            f"machine_hours must be 0..{max_hours:.2f} for this task, got {report.machine_hours!r}"
        )
    return None


def settle_done(store: Store, peer: str, report: wire.TaskReport, now: datetime) -> bool:
    """Settle peer work reported done (counted or late): ``settlement.settle_peer_work``, once
    per part however often it is called. The one call site of settlement here."""
    return settle_peer_work(store, peer, report.origin_task_id, report.charged_mc, now,
                            report.peer_task_id)  # fmt: skip


class ResultsInbox:
    """Receives peers' report batches (a ``PeerHandler``)."""

    def __init__(self, store: Store, clock: Callable[[], datetime], *,
                 peer_lease_s: float = wire.DEFAULT_PEER_LEASE_S) -> None:  # fmt: skip
        if not peer_lease_s > 0:
            raise InvalidInput(f"peer_lease_s must be > 0, got {peer_lease_s!r}")
        self._store = store
        self._clock = clock
        self._lease_s = peer_lease_s
        self._reports = PeerReports(store.db)

    def receive(self, verified: Verified, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply a verified peer's batch of reports; one ``ReportResult`` per report, in order.
        InvalidInput (nothing applied) for a malformed batch."""
        reports = wire.reports_from_json(payload)
        peer = verified.peer.name
        now = self._clock()
        sent = tasks_sent_to(self._store.db, peer, {r.origin_task_id for r in reports})
        results: list[ReportResult | None] = [None] * len(reports)
        items: list[tuple[str, TaskEvent]] = []
        slots: list[int] = []
        for i, report in enumerate(reports):
            refusal = self._refusal(report, sent.get(report.origin_task_id), peer)
            if refusal is not None:
                results[i] = ReportResult(report.report_id, ReportOutcome.REFUSED, refusal)
                log.warning("report %s from %s refused: %s", report.report_id, peer, refusal)
                continue
            items.append((report.origin_task_id, self._event(peer, report)))
            slots.append(i)
        outcomes = self._store.apply_events(items, now)
        for slot, outcome in zip(slots, outcomes, strict=True):
            results[slot] = self._result(peer, reports[slot], outcome)
        done = [r for r in results if r is not None]
        for slot in slots:
            self._after(peer, reports[slot], done[slot], now)
        return wire.results_json(done)

    @staticmethod
    def _refusal(report: TaskReport, task: SentTask | None, peer: str) -> str | None:
        if task is None:
            return f"task {report.origin_task_id} was never sent to {peer}"
        if report.state is ReportState.DONE:
            return figures_problem(report, task)
        return None

    def _event(self, peer: str, report: TaskReport) -> TaskEvent:
        machine_id, n = wire.peer_machine_id(peer), report.offer_no
        event_id = report_event_id(peer, report.report_id)
        reason = f"at {peer}: {report.reason}"[:500]
        match report.state:
            case ReportState.PROGRESS:
                return TaskProgressed(machine_id=machine_id, offer_no=n, fraction=report.fraction,
                                      lease_s=self._lease_s, event_id=event_id)  # fmt: skip
            case ReportState.STARTED:
                return TaskStarted(machine_id=machine_id, offer_no=n, lease_s=self._lease_s,
                                   event_id=event_id)  # fmt: skip
            case ReportState.DONE:
                return TaskCompleted(machine_id=machine_id, offer_no=n, grams=report.grams,
                                     machine_hours=report.machine_hours, event_id=event_id)  # fmt: skip
            case ReportState.FAILED:
                return TaskFailed(machine_id=machine_id, offer_no=n, reason=reason,
                                  event_id=event_id)  # fmt: skip
            case ReportState.RELEASED:
                return TaskReleased(machine_id=machine_id, offer_no=n, reason=reason,
                                    event_id=event_id)  # fmt: skip

    def _result(self, peer: str, report: TaskReport,
                outcome: Outcome | FabnetError) -> ReportResult:  # fmt: skip
        rid = report.report_id
        if isinstance(outcome, Transition):
            return ReportResult(rid, ReportOutcome.APPLIED)
        if isinstance(outcome, FabnetError):
            return ReportResult(rid, ReportOutcome.REFUSED, str(outcome)[: wire.MAX_TEXT])
        if outcome.reason is IgnoreReason.DUPLICATE:
            return ReportResult(rid, ReportOutcome.DUPLICATE)
        if outcome.reason is IgnoreReason.WRONG_STATE and self._still_held(peer, report):
            # e.g. STARTED again while running: nothing to change, the work goes on
            return ReportResult(rid, ReportOutcome.DUPLICATE, _why(outcome))
        return ReportResult(rid, ReportOutcome.STALE, _why(outcome))

    def _still_held(self, peer: str, report: TaskReport) -> bool:
        task = self._store.tasks.get(report.origin_task_id)
        return (task.machine_id == wire.peer_machine_id(peer) and task.offer_no == report.offer_no
                and not task.state.is_final)  # fmt: skip

    def _after(self, peer: str, report: TaskReport, result: ReportResult, now: datetime) -> None:
        """Record a final report (once per report id) and settle a DONE one."""
        if not report.state.is_final or result.outcome is ReportOutcome.REFUSED:
            return
        # the first sight of a report is kept (a resend, DUPLICATE, leaves it as it was)
        self._reports.record(
            PeerReport(
                peer,
                report.report_id,
                report.origin_task_id,
                report.offer_no,
                report.state.value,
                result.outcome.value,
                report.grams,
                report.machine_hours,
                report.charged_mc,
                now,
                result.why,
            )  # fmt: skip
        )
        if report.state is ReportState.DONE:
            settle_done(self._store, peer, report, now)
        log.info("final report %s from %s on task %s: %s %s", report.report_id, peer,
                 report.origin_task_id, report.state.value, result.outcome.value)  # fmt: skip


def _why(outcome: Ignored) -> str:
    return f"{outcome.reason.value}: {outcome.detail}"[: wire.MAX_TEXT]
