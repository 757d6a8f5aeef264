"""The matcher's budget guard (issue 11): a budgeted job's task avoids the machines whose
price for it is over its share of what is left of the cap; an unbudgeted job's is untouched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fabnet.core import credits as cr
from fabnet.core.machines import Machine
from fabnet.core.matching import MachineIndex
from fabnet.core.states import MachineKind
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.economy import Economy
from fabnet.hub.economy.budget import BudgetGuard
from fabnet.hub.service import HubService, JobRequest
from fabnet.library.design import library_dir
from fabnet.store import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUBE = "cube-xyz-20mm"


def machine(machine_id: str) -> Machine:
    maker = machine_id.split("/")[0]
    return Machine(machine_id, maker, MachineKind.FDM, (250.0, 210.0, 210.0), 0.4,
                   frozenset({"PLA"}))  # fmt: skip


def test_over_budget_machines_are_avoided(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    designs = DesignCatalog(store, library_dir())
    designs.register_library(NOW)
    service = HubService(store, designs, lambda job, why: None, clock=lambda: NOW)
    economy = Economy(service, cr.Terms(fee_bp=0), clock=lambda: NOW)
    fleet = [machine("cheap/m"), machine("dear/m")]
    for m in fleet:
        store.catalog.add_maker(m.maker_id, NOW, maker_id=m.maker_id)
        store.catalog.upsert_machine(m)
    store.prices.set("cheap/m", 100, {"PLA": 1000}, "cheap", NOW)
    store.prices.set("dear/m", 1_000_000, {}, "dear", NOW)
    store.accounts.add_user("rita", "password1", ["requester"], NOW)
    store.credits.grant("seed", "rita", 10**9, NOW)
    quote = economy.quote(CUBE, 2, "PLA").quote
    by_machine = {m.machine_id: m.total_mc for m in quote.machines}
    cap = by_machine["cheap/m"] + 1  # enough for two parts on the cheap machine only
    budgeted, _ = economy.submit(JobRequest(CUBE, 2, "PLA", requester="rita"), cap)
    plain = service.submit(JobRequest(CUBE, 1, "PLA", requester="rita"))
    requests = store.tasks.queued()
    guarded = BudgetGuard(store, designs, cr.Terms(fee_bp=0)).restrict(requests, fleet)
    jobs = {t.task_id: t.job_id for t in store.tasks.find()}
    for before, after in zip(requests, guarded, strict=True):
        assert before.task_id == after.task_id
        if jobs[after.task_id] == budgeted.spec.job_id:
            assert after.avoid_machines == {"dear/m"}
        else:
            assert jobs[after.task_id] == plain.spec.job_id and after.avoid_machines == set()
    index = MachineIndex()
    for m in fleet:
        index.upsert(m)
    matched = {a.task_id: a.machine_id for a in index.match(guarded, NOW)}
    for task_id, machine_id in matched.items():
        if jobs[task_id] == budgeted.spec.job_id:
            assert machine_id == "cheap/m"
    store.close()
