"""The scheduler's tick: lapsed offers and expired leases back to the queue, fairness figures
refreshed, and queued tasks offered to idle machines — fetching only as many queued tasks as
there are idle machines, in one transaction (``Store.offer_queued``), and no query at all when
no machine is idle. An offer round also runs as soon as a machine becomes idle."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.core import events as ev
from fabnet.core.matching import Assignment, TaskRequest
from fabnet.core.states import TaskState
from fabnet.core.tasks import Transition
from fabnet.hub.designs import estimate_part
from fabnet.hub.dispatch.context import DispatchContext
from fabnet.hub.dispatch.hearing import HearingGate
from fabnet.hub.economy.budget import BudgetGuard
from fabnet.hub.machines import split_machine_id
from fabnet.store.tasks import Due

log = logging.getLogger("fabnet.hub.dispatcher")

FAIRNESS_REFRESH = timedelta(seconds=30)
MATCH_BATCH = 500  # queued tasks one round looks at, at most
OFFERS_SCAN = 100_000  # open offers read per tick to find the lapsed ones' holders
ASK_FIRST_FACTOR = 10  # a maker deciding by hand gets this many offer lengths
RECHECK_EVERY = timedelta(seconds=5)  # how often machines busy elsewhere are looked at again


class Offering:
    """Ticks and offer rounds (dispatcher thread only)."""

    def __init__(self, ctx: DispatchContext) -> None:
        self._ctx = ctx
        self.gate = HearingGate(ctx.settings.lease_s)
        self._fairness_at: datetime | None = None
        # A round that saw a full window yet left machines idle widens the next one, so tasks
        # no idle machine can take at the head of the queue do not hide those behind them.
        self._widen = 1
        # Machines this process matched and found busy in the store (offered or working for
        # another dispatcher): reserved in the index until a look at the store finds them
        # free (``_recheck``), so they are not offered again and again, nor lost for good.
        self._elsewhere: set[str] = set()
        self._rechecked_at: datetime | None = None
        # a budgeted job's task avoids idle machines whose price is over its cap (issue 11)
        self._budget = BudgetGuard(ctx.store, ctx.designs, ctx.settings.economy_terms)

    def tick(self, now: datetime) -> Due:
        """Sweep what is due and offer what is queued. One read (``Tasks.due``) first says
        whether anything is: an idle dispatcher's tick costs that one read, not two sweeps'
        and an offer round's write transactions (several dispatchers each tick on their own).
        Returns that read for the rest of the tick."""
        ctx = self._ctx
        self.gate.observe(ctx.bus.connected, ctx.bus.connects, now)
        for machine_id in ctx.holds.released():
            ctx.refresh_machine(machine_id)
        due = ctx.store.tasks.due()
        # an offer answered while the hub is deaf would arrive too late to count: not lapsed
        if self.gate.hearing() and _passed(due.offer_until, now):
            self._expire_offers(now)
        if self.gate.leases_may_expire(now) and _passed(due.lease_until, now):
            self._expire_leases(now)
        if due.queued:  # else nothing to offer (a machine freed later asks for a round itself)
            self._recheck(now)
            if self._fairness_at is None or now - self._fairness_at > FAIRNESS_REFRESH:
                ctx.index.set_recent_hours(ctx.store.ledger.recent_hours_by_maker(now))
                self._fairness_at = now
            self.offer_round(now)
        return due

    def _expire_offers(self, now: datetime) -> None:
        ctx = self._ctx
        # The holder of an offer is in the store only until it lapses: read it first.
        holders = {
            t.task_id: (t.machine_id, t.offer_no)
            for t in ctx.store.tasks.find(state=TaskState.OFFERED, limit=OFFERS_SCAN)
            if t.offer_until is not None and t.offer_until <= now and t.machine_id
        }
        if not holders:
            return
        for moved in ctx.store.tasks.expire_offers(now):
            ctx.metrics.offer_answered("lapsed")
            ctx.metrics.requeued(moved.cause.value)
            self._log(moved)
            machine_id, offer_no = holders.get(moved.task.task_id, (None, 0))
            if machine_id:
                ctx.send_task_command(machine_id, msg.TaskCancel, moved.task.task_id, offer_no)
                ctx.refresh_machine(machine_id)

    def _expire_leases(self, now: datetime) -> None:
        ctx = self._ctx
        expired = ctx.store.expire_leases(now)
        if expired:
            ctx.metrics.lease_expired(len(expired))
        for moved in expired:
            ctx.holds.after_attempt(moved.attempt_ended, now)
            if moved.to_state is TaskState.QUEUED:
                ctx.metrics.requeued(moved.cause.value)
            self._log(moved)
            holder = moved.attempt_ended.machine_id if moved.attempt_ended else None
            if holder:
                attempt = moved.attempt_ended.offer_no if moved.attempt_ended else 0
                ctx.send_task_command(holder, msg.TaskCancel, moved.task.task_id, attempt)
                ctx.refresh_machine(holder)

    def offer_round(self, now: datetime) -> None:
        """Offer queued tasks to the idle machines of the index, in one transaction."""
        ctx = self._ctx
        ctx.offer_wanted = False
        idle = len(ctx.index)
        if idle == 0 or not ctx.bus.connected:
            return
        limit = min(MATCH_BATCH, idle * self._widen)
        chosen: dict[str, Assignment] = {}
        seen = 0

        def match(requests: list[TaskRequest]) -> list[tuple[str, ev.TaskOffered]]:
            nonlocal seen
            seen = len(requests)
            requests = self._budget.restrict(requests, ctx.index.available())
            matched = ctx.index.match(requests, now)
            # Another dispatcher may have given one of these machines work this one did not
            # hear of (shared subscriptions split the machines' messages): ask the store.
            busy = ctx.store.tasks.busy_machines({a.machine_id for a in matched})
            self._elsewhere |= busy  # stay reserved here until the store shows them free
            offers = []
            for a in matched:
                if a.machine_id in busy:
                    continue
                chosen[a.task_id] = a
                offer_s = ctx.settings.offer_s * (1 if a.auto_accept else ASK_FIRST_FACTOR)
                offers.append((a.task_id, ev.TaskOffered(machine_id=a.machine_id, offer_s=offer_s)))
            return offers

        try:
            moved = ctx.store.offer_queued(limit, now, match)
        except Exception:
            for a in chosen.values():  # the match reserved them; nothing was offered
                ctx.refresh_machine(a.machine_id)
            raise
        offered = {t.task.task_id for t in moved}
        for t in moved:
            a = chosen[t.task.task_id]
            self._send_offer(t, a.machine_id, a.hours)
        for task_id, a in chosen.items():  # reserved by the match, not offered: free again
            if task_id not in offered:
                ctx.refresh_machine(a.machine_id)
        if moved:
            ctx.metrics.offers_sent(len(moved))
        if seen < limit:  # the whole queue was seen: nothing is hidden behind the window
            self._widen = 1
        elif len(chosen) < idle:
            self._widen = min(self._widen * 2, MATCH_BATCH)
        else:  # narrowing slowly: a queue that needed a wide look likely still does
            self._widen = max(1, self._widen // 2)

    def _recheck(self, now: datetime) -> None:
        """Every ``RECHECK_EVERY``: machines found busy elsewhere that the store now shows
        free go back into the index as stored."""
        if not self._elsewhere:
            return
        if self._rechecked_at is not None and now - self._rechecked_at < RECHECK_EVERY:
            return
        self._rechecked_at = now
        still = self._ctx.store.tasks.busy_machines(self._elsewhere)
        for machine_id in self._elsewhere - still:
            self._ctx.refresh_machine(machine_id)
        self._elsewhere = still

    def _send_offer(self, moved: Transition, machine_id: str, hours: float) -> None:
        ctx = self._ctx
        task = moved.task
        job = ctx.job_spec(task.job_id)
        entry = ctx.designs.get(job.design_id)
        _, grams = estimate_part(entry.facts, job.material)
        agent, machine = split_machine_id(machine_id)
        offer = msg.TaskOffer(
            machine=machine,
            task_id=task.task_id,
            attempt=task.offer_no,
            design_id=job.design_id,
            design_name=entry.design.name[:256],
            material=job.material,
            est_grams=grams * job.parts_per_task,
            est_machine_s=hours * 3600.0,
            deadline=job.deadline,
        )
        ctx.bus.publish(topics.agent_commands(agent), offer)

    @staticmethod
    def _log(moved: Transition) -> None:
        log.info(
            "task %s: %s -> %s (%s)", moved.task.task_id, moved.from_state, moved.to_state,
            moved.cause,
        )  # fmt: skip


def _passed(at: datetime | None, now: datetime) -> bool:
    return at is not None and at <= now
