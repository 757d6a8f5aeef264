"""The matcher's budget guard (issue 11): a task of a budgeted job is offered only to
machines whose price for it, fee included, fits its share of what is left of the job's cap
(``core.credits.fits_budget`` over ``task_budget_mc``). The dispatcher calls ``restrict`` on
the requests of an offer round before matching; machines over budget join each request's
``avoid_machines``, so the matcher's own order and fairness stay as they are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from fabnet.core import credits as cr
from fabnet.core.machines import Machine
from fabnet.core.matching import TaskRequest
from fabnet.hub.designs import DesignCatalog, estimate_part
from fabnet.hub.economy.pricing import default_per_kg
from fabnet.store import Store
from fabnet.store.budgets import task_budgets


class BudgetGuard:
    """``restrict(requests, machines)``: requests with over-budget machines avoided."""

    def __init__(self, store: Store, designs: DesignCatalog, defaults: cr.Terms | None = None):
        self._store = store
        self._designs = designs
        self._defaults = defaults or cr.Terms()

    def restrict(
        self, requests: list[TaskRequest], machines: Iterable[Machine]
    ) -> list[TaskRequest]:
        """``requests`` in their order; those of budgeted jobs avoid every machine of
        ``machines`` (the idle ones) whose price for the task is over its share of the rest."""
        budgets = task_budgets(self._store.db, [r.task_id for r in requests])
        if not budgets:
            return requests
        terms = self._store.prices.terms(self._defaults)
        per_kg = default_per_kg(terms)
        prices = self._store.prices.all()
        pool = list(machines)
        grams: dict[tuple[str, str], float] = {}
        out = []
        for request in requests:
            budget = budgets.get(request.task_id)
            if budget is None:
                out.append(request)
                continue
            key = (budget.design_id, budget.material)
            if key not in grams:
                facts = self._designs.get(budget.design_id).facts
                grams[key] = estimate_part(facts, budget.material)[1]
            over = {
                m.machine_id
                for m in pool
                if not cr.fits_budget(
                    prices.get(m.machine_id) or cr.MachinePrice(m.machine_id),
                    budget.material,
                    per_kg.get(budget.material, 0),
                    m.hours_for(request.estimated_hours),
                    grams[key] * budget.parts,
                    terms.fee_bp,
                    budget.per_task_mc,
                )
            }
            out.append(replace(request, avoid_machines=request.avoid_machines | over))
        return out
