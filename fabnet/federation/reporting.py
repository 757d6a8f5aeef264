"""Reporting back to origin hubs (issue 12): each round, one report per open binding (the
foreign tasks this hub makes for its peers, ``fabnet.store.foreign_tasks``), batched per
origin and sent signed to ``wire.REPORTS_PATH``; the origin's answers close the bindings.

A PROGRESS heartbeat keeps the origin's lease alive while the task waits or runs here
(each has a new report id: each extends the lease once); STARTED is sent until the origin
acknowledges it; a final report (DONE, FAILED, RELEASED) keeps the id
``<local task>:<offer>:<state>``, so a resend — after a lost answer or a restart of this
hub, since everything here is read from the database — is a duplicate at the origin.
An origin that cannot be reached, or refuses the batch, leaves every binding open for the
next round. A STALE (or REFUSED) answer means the origin took the task back: the local task
is cancelled if it is not final, and the binding closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fabnet.core.credits import Terms
from fabnet.core.ids import new_id
from fabnet.core.states import TaskState
from fabnet.errors import DeviceError, InvalidInput, NotFound
from fabnet.federation import wire
from fabnet.federation.client import PeerClient
from fabnet.federation.licensing import Redistribution, redistribution
from fabnet.federation.peers import PeerService
from fabnet.federation.settlement import charge_peer_task
from fabnet.store import Store
from fabnet.store.foreign_tasks import Binding, ForeignTasks
from fabnet.store.peers import Peer, PeerState

log = logging.getLogger(__name__)

SENT = "sent"
TAKEN_BACK = (wire.ReportOutcome.STALE, wire.ReportOutcome.REFUSED)
ACKNOWLEDGED = (wire.ReportOutcome.APPLIED, wire.ReportOutcome.DUPLICATE)


class Reporter:
    """Tells origin hubs how the tasks made here for them stand.

    ``terms`` are this hub's economy terms (``[economy]``), for charging the origin for a
    done task; ``cancel(job_id, reason)`` stops a local job the origin took back (default:
    cancelled in the store; a hub with a dispatcher passes ``HubService.cancel``'s callback
    so the machine holding it is told at once)."""

    def __init__(self, store: Store, peers: PeerService, clock: Callable[[], datetime], *,
                 terms: Terms | None = None,
                 cancel: Callable[[str, str], None] | None = None) -> None:  # fmt: skip
        self._store = store
        self._peers = peers
        self._clock = clock
        self._terms = terms
        self._cancel = cancel or self._cancel_in_store
        self.foreign = ForeignTasks(store.db)

    def round(self) -> dict[str, str]:
        """Report on every open binding: origin hub -> ``"sent N"`` or why nothing was sent
        (peering paused, removed or unconfirmed; origin unreachable or refusing)."""
        bindings = self.foreign.open_bindings()
        if not bindings:
            return {}
        by_origin: dict[str, list[Binding]] = {}
        for binding in bindings:
            by_origin.setdefault(binding.origin, []).append(binding)
        me = self._peers.require_identity()
        client = PeerClient(me.name, me.key, me.max_skew_s, self._clock)
        results: dict[str, str] = {}
        for origin, group in by_origin.items():
            peer = self._peers.peers.get(origin)
            if peer is None or peer.state is not PeerState.ACTIVE:
                results[origin] = f"peering is {peer.state.value if peer else 'gone'}"
            elif not peer.confirmed:
                results[origin] = "peering is not confirmed (no hello both ways)"
            else:
                try:
                    results[origin] = f"{SENT} {self._report(client, peer, group)}"
                except (DeviceError, InvalidInput) as exc:  # unreachable, refused, garbled
                    log.warning("reports to %s not delivered: %s", origin, exc)
                    results[origin] = str(exc)
        return results

    def _report(self, client: PeerClient, peer: Peer, bindings: list[Binding]) -> int:
        """Send ``bindings``' reports to ``peer`` in batches; apply its answers; how many."""
        pending = [(b, self.report_for(peer, b)) for b in bindings]
        for start in range(0, len(pending), wire.MAX_REPORTS):
            batch = pending[start : start + wire.MAX_REPORTS]
            payload = wire.reports_json([report for _, report in batch])
            answer = client.post(peer, wire.REPORTS_PATH, payload)
            results = {r.report_id: r for r in wire.results_from_json(answer)}
            for binding, report in batch:
                result = results.get(report.report_id)
                if result is not None:
                    self._apply(binding, report, result)
        return len(pending)

    def report_for(self, peer: Peer, binding: Binding) -> wire.TaskReport:
        """The report on ``binding`` now, from its local task's state."""
        task = self._store.tasks.get(binding.local_task_id)
        key = f"{binding.local_task_id}:{binding.offer_no}"

        def final(state: wire.ReportState, **figures: Any) -> wire.TaskReport:
            return wire.TaskReport(f"{key}:{state.value}", binding.origin_task_id,
                                   binding.offer_no, state, peer_task_id=binding.local_task_id,
                                   **figures)  # fmt: skip

        if task.state is TaskState.DONE:
            grams, hours = self.foreign.done_figures(task.task_id) or (0.0, 0.0)
            charged = self._charge(peer, binding)
            return final(wire.ReportState.DONE, fraction=1.0, grams=grams, machine_hours=hours,
                         charged_mc=charged)  # fmt: skip
        if task.state is TaskState.FAILED:
            why = task.attempts[-1].detail if task.attempts else ""
            return final(wire.ReportState.FAILED, reason=why[: wire.MAX_TEXT])
        if task.state is TaskState.CANCELLED:
            me = self._peers.require_identity().name
            return final(wire.ReportState.RELEASED, reason=f"cancelled at {me}")
        if task.state is TaskState.RUNNING and not binding.started_sent:
            return final(wire.ReportState.STARTED, fraction=task.progress)
        return wire.TaskReport(f"{key}:progress:{new_id()}", binding.origin_task_id,
                               binding.offer_no, wire.ReportState.PROGRESS,
                               fraction=min(max(task.progress, 0.0), 1.0),
                               peer_task_id=binding.local_task_id)  # fmt: skip

    def _apply(self, binding: Binding, report: wire.TaskReport,
               result: wire.ReportResult) -> None:  # fmt: skip
        now = self._clock()
        if result.outcome in TAKEN_BACK:
            why = f"{result.outcome.value} at {binding.origin}: {result.why}"
            # close first: if the task was re-bound meanwhile (a newer offer), it stays live
            if self.foreign.close(binding, why, now):
                log.info("task %s of %s taken back (%s)", binding.origin_task_id,
                         binding.origin, why)  # fmt: skip
                if not self._store.tasks.get(binding.local_task_id).state.is_final:
                    self._cancel(binding.local_job_id, why)
        elif result.outcome in ACKNOWLEDGED:
            if report.state.is_final:
                self.foreign.close(binding, f"{report.state.value} {result.outcome.value}", now)
            elif report.state is wire.ReportState.STARTED:
                self.foreign.mark_started(binding, now)

    def _charge(self, peer: Peer, binding: Binding) -> int:
        """Credits (milli) charged to the origin for the done task: none for a non-commercial
        design or a peer this hub does not charge."""
        free = (redistribution(binding.license) is not Redistribution.ANY
                or not peer.terms.charges_credits)  # fmt: skip
        return charge_peer_task(self._store, binding.local_task_id, peer.name, free,
                                 self._terms, self._clock())  # fmt: skip

    def _cancel_in_store(self, job_id: str, reason: str) -> None:
        try:
            self._store.jobs.cancel(job_id, self._clock(), reason)
        except NotFound:
            log.warning("local job %s to cancel is gone", job_id)
