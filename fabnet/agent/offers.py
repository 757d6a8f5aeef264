"""The offer side of one machine: policy decisions on ``task.offer``, the accepted offer held
until its ``task.assign``, and offers waiting for the maker's answer. Used only from the
machine's worker thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fabnet.agent.outbox import Outbox
from fabnet.agent.pending import PendingOffers
from fabnet.agent.policy import MachineSituation, OfferFacts, Verdict, decide_offer
from fabnet.agent.reports import event_for
from fabnet.bus.messages import MachineState, TaskAccepted, TaskCommand, TaskDeclined, TaskOffer
from fabnet.config import MachineConfig
from fabnet.core.cron import CronExpr

log = logging.getLogger(__name__)

HOLD_S = 300.0  # an accepted offer waits this long for its task.assign


@dataclass(frozen=True)
class Hold:
    """An accepted offer waiting for its assignment until ``until`` (monotonic s)."""

    task_id: str
    attempt: int
    until: float


class OfferDesk:
    """Answers one machine's offers by its policy and remembers what it promised."""

    def __init__(
        self,
        config: MachineConfig,
        windows: tuple[CronExpr, ...],
        pending: PendingOffers,
        outbox: Outbox,
        events_topic: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._windows = windows
        self._pending = pending
        self._out = outbox
        self._events = events_topic
        self._clock = clock
        self.hold: Hold | None = None

    def configure(self, config: MachineConfig, windows: tuple[CronExpr, ...]) -> None:
        """Decide the next offers by ``config``'s material and policy and by ``windows``."""
        self._config = config
        self._windows = windows

    @property
    def machine_id(self) -> str:
        return self._config.machine_id

    def promised(self, ignore_pending: bool = False) -> str | None:
        """The task id of the held offer or (unless ``ignore_pending``) the pending one."""
        if self.hold is not None and self.hold.until > time.monotonic():
            return self.hold.task_id
        if not ignore_pending:
            found = self._pending.get(self.machine_id, datetime.now(UTC))
            if found is not None:
                return found.offer.task_id
        return None

    def _decide(
        self, offer: TaskOffer, state: MachineState, busy_with: str | None, ignore_pending: bool
    ) -> tuple[Verdict, str]:
        if state in (MachineState.OFFLINE, MachineState.ERROR):
            return Verdict.DECLINE, f"machine not ready ({state.value})"
        holding = busy_with or self.promised(ignore_pending)
        situation = MachineSituation(self._config.material, holding)
        facts = OfferFacts(offer.material, offer.est_machine_s)
        decision = decide_offer(self._config.policy, self._windows, situation, facts, self._clock())
        return decision.verdict, decision.reason or ""

    def on_offer(self, offer: TaskOffer, state: MachineState, busy_with: str | None) -> None:
        """Accept, keep for the maker, or decline ``offer``; a repeated offer of the task
        already held is accepted again, one already running or pending is ignored."""
        if offer.task_id in (busy_with, self.promised()):
            if self.hold is not None and self.hold.attempt == offer.attempt and not busy_with:
                self._accept(offer)
            return
        verdict, reason = self._decide(offer, state, busy_with, ignore_pending=False)
        if verdict is Verdict.ACCEPT:
            self._accept(offer)
        elif verdict is Verdict.ASK:
            self._pending.add(offer, datetime.now(UTC))
            log.info("machine %s: offer of task %s waits for the maker", self.machine_id,
                     offer.task_id)  # fmt: skip
        else:
            self._decline(offer, reason)

    def on_answer(
        self, task_id: str, accept: bool, state: MachineState, busy_with: str | None
    ) -> None:
        """The maker's answer to the pending offer of ``task_id``; the policy is checked again
        (the machine may have become busy or the window closed meanwhile)."""
        offer = self._pending.take(self.machine_id, task_id)
        if offer is None:
            log.warning("machine %s: no pending offer for task %s", self.machine_id, task_id)
            return
        if not accept:
            self._decline(offer, "declined by the maker")
            return
        verdict, reason = self._decide(offer, state, busy_with, ignore_pending=True)
        if verdict is Verdict.DECLINE:
            self._decline(offer, reason)
        else:
            self._accept(offer)

    def assigned(self, task_id: str) -> None:
        """The task arrived: the promise is kept."""
        self.hold = None
        self._pending.take(self.machine_id, task_id)

    def withdraw(self, task_id: str) -> bool:
        """The hub cancelled ``task_id``: forget a hold or pending offer of it; True if any."""
        if self.hold is not None and self.hold.task_id == task_id:
            self.hold = None
            return True
        return self._pending.take(self.machine_id, task_id) is not None

    def expire(self) -> None:
        """Release a hold whose assignment never came."""
        if self.hold is not None and self.hold.until <= time.monotonic():
            log.info("machine %s: no assignment for task %s; hold released", self.machine_id,
                     self.hold.task_id)  # fmt: skip
            self.hold = None

    def _accept(self, offer: TaskCommand) -> None:
        self.hold = Hold(offer.task_id, offer.attempt, time.monotonic() + HOLD_S)
        self._out.publish(self._events, event_for(TaskAccepted, offer))
        log.info("machine %s: accepted task %s", self.machine_id, offer.task_id)

    def _decline(self, offer: TaskCommand, reason: str) -> None:
        self._out.publish(self._events, event_for(TaskDeclined, offer, reason=reason))
        log.info("machine %s: declined task %s: %s", self.machine_id, offer.task_id, reason)
