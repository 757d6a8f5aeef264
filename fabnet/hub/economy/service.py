"""What people ask of the network's economy (issue 11): quotes, budgeted submits, acceptance,
and the hub's tick that accepts for silent requesters and refunds settled jobs. Shared by the
REST API and the CLI; the store keeps the books, the core does the arithmetic."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fabnet.core import credits as cr
from fabnet.core import quotes
from fabnet.core.tasks import Transition
from fabnet.errors import Conflict, InvalidInput
from fabnet.hub.designs import estimate_part
from fabnet.hub.economy.pricing import candidates, default_per_kg, material_kind
from fabnet.hub.service import MAX_QUANTITY, HubService, JobRequest
from fabnet.profiles import load_materials
from fabnet.store.jobs import JobInfo
from fabnet.store.reviews import Settlement

log = logging.getLogger(__name__)

TICK_BATCH = 500  # tasks accepted / jobs settled per tick; the rest wait for the next


@dataclass(frozen=True)
class QuoteAnswer:
    """A quote with what it was asked for and the terms it used."""

    design_id: str
    material: str
    quote: quotes.Quote
    terms: cr.Terms


@dataclass(frozen=True)
class TickReport:
    accepted: int
    refunded: int


class Economy:
    """The hub's economy over one ``HubService`` (its store, designs and clock).

    ``defaults`` are the config's ``[economy]`` terms; the operator's stored fee, currency and
    credit value override them (``terms``).
    """

    def __init__(
        self,
        service: HubService,
        defaults: cr.Terms | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self.store = service.store
        self.defaults = defaults or cr.Terms()
        self._clock = clock

    def terms(self) -> cr.Terms:
        return self.store.prices.terms(self.defaults)

    def quote(self, design: str, quantity: int, material: str) -> QuoteAnswer:
        """Price ``quantity`` parts of ``design`` in ``material`` on the machines that can
        make it. Raises ``InvalidInput`` (quantity, material) and ``NotFound`` (design)."""
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidInput(f"quantity must be 1..{MAX_QUANTITY}, got {quantity}")
        try:
            name = load_materials().get(material).name
            material_kind(name)
        except KeyError as exc:
            raise InvalidInput(f"material: {exc.args[0]}") from None
        entry = self.service.designs.resolve(design)
        hours, grams = estimate_part(entry.facts, name)
        terms = self.terms()
        found = candidates(self.store, name, entry.facts.size_mm, terms)
        queued = self.store.tasks.queued()
        queue_hours = sum(t.estimated_hours for t in queued if t.material == name)
        answer = quotes.quote(found, hours, grams, quantity, terms.fee_bp, queue_hours)
        return QuoteAnswer(entry.design_id, name, answer, terms)

    def submit(self, request: JobRequest, cap_mc: int | None) -> tuple[JobInfo, int]:
        """Submit a job holding its budget cap (default: the quote's highest price) from the
        requester's credits. Raises ``Conflict`` when the credits (and the allowed debt) do
        not cover the cap, or no machine can make it; the job is then not left queued."""
        if cap_mc is None:
            highest = self.quote(request.design, request.quantity, request.material).quote
            if highest.highest_mc is None:
                raise Conflict(
                    "no machine can make this design in this material now, so it has no price "
                    "to hold: name the most it may cost (budget_cap_mc)"
                )
            cap_mc = highest.highest_mc
        if cap_mc < 1:
            raise InvalidInput(f"budget_cap_mc must be >= 1, got {cap_mc}")
        terms = self.terms()
        account = cr.requester_account(request.requester)
        balance = self.store.credits.balance(account)
        if not cr.can_commit(balance, cap_mc, cr.debt_limit_of(account, terms)):
            raise Conflict(
                f"not enough credits: {request.requester} has {balance} mc, the job's cap is "
                f"{cap_mc} mc (debt allowed: {terms.debt_limit_mc} mc)"
            )
        info = self.service.submit(request)
        try:
            self.store.credits.hold(
                info.spec.job_id, request.requester, cap_mc, terms.debt_limit_mc, self._clock()
            )
        except Conflict:  # spent meanwhile by another submit: take the job back
            self.store.jobs.cancel(info.spec.job_id, self._clock(), "not enough credits")
            raise
        return self.store.jobs.get(info.spec.job_id), cap_mc

    def accept(self, task_id: str, by: str) -> Settlement:
        """Accept a done task and pay for it (once); then settle its job if it can be."""
        terms = self.terms()
        done = self.store.reviews.accept(task_id, by, self._clock(), terms, default_per_kg(terms))
        self.store.reviews.settle_job(done.job_id, self._clock())
        return done

    def resolve(self, task_id: str, pay: bool, by: str, detail: str = "") -> None:
        """An operator ends a dispute: pay the maker, or void the task (not paid)."""
        terms = self.terms()
        now = self._clock()
        if pay:
            per_kg = default_per_kg(terms)
            self.store.reviews.accept(task_id, by, now, terms, per_kg, resolving=True)
        else:
            self.store.reviews.void(task_id, by, detail, now)
        self.store.reviews.settle_job(self.store.tasks.get(task_id).job_id, now)

    def reject(self, task_id: str, reason: str, detail: str, by: str) -> Transition:
        try:
            why = cr.RejectReason(reason)
        except ValueError:
            choices = ", ".join(r.value for r in cr.RejectReason)
            raise InvalidInput(f"reason must be one of {choices}, got {reason!r}") from None
        return self.store.reviews.reject(task_id, why, detail, by, self._clock())

    def dispute(self, task_id: str, by: str, detail: str) -> None:
        self.store.reviews.dispute(task_id, by, detail, self._clock())

    def tick(self, now: datetime | None = None) -> TickReport:
        """The scheduler's call: accept, as the hub, done tasks nobody answered for
        ``auto_accept_after_s``, and refund what settled jobs did not spend."""
        now = now or self._clock()
        terms = self.terms()
        per_kg = default_per_kg(terms)
        due = self.store.reviews.due(now - timedelta(seconds=terms.auto_accept_after_s), TICK_BATCH)
        accepted = 0
        for task_id in due:
            try:
                self.store.reviews.accept(task_id, "hub", now, terms, per_kg)
                accepted += 1
            except Conflict as exc:  # decided by someone else meanwhile
                log.info("auto-accept of task %s skipped: %s", task_id, exc)
        refunded = 0
        for job_id in self.store.reviews.unsettled_jobs(TICK_BATCH):
            if self.store.reviews.settle_job(job_id, now) is not None:
                refunded += 1
        return TickReport(accepted, refunded)
