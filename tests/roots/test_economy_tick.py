"""The economy's tick runs in every dispatching hub process (issue 11): an ``all`` hub on SQLite
and a ``dispatcher`` on PostgreSQL each accept a done part nobody answered for, once
``auto_accept_after_h`` has passed, and pay its maker from the job's escrow; the settled job
gets the rest of its cap back. An ``api`` process has no scheduler: it never accepts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.config import load_hub_config
from fabnet.core import credits as cr
from fabnet.core import events as ev
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind
from fabnet.core.tasks import Transition
from fabnet.hub.economy import Economy
from fabnet.hub.service import JobRequest
from fabnet.roots.hub import Hub
from fabnet.roots.roles import Role
from fabnet.sim.makers import write_network
from fabnet.store import Store

CUBE = "cube-xyz-20mm"
AUTO_ACCEPT_S = 1.0
TICK_S = 0.5


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def done_part(store: Store, economy: Economy) -> tuple[str, str]:
    """A budgeted job of one part, made and reported done on machine k/m: (job, task)."""
    now = datetime.now(UTC)
    store.catalog.add_maker("k", now, maker_id="k")
    store.catalog.upsert_machine(Machine("k/m", "k", MachineKind.FDM, (250.0, 210.0, 210.0),
                                         0.4, frozenset({"PLA"})))  # fmt: skip
    store.accounts.add_user("rita", "password1", ["requester"], now)
    store.credits.grant("seed", "rita", 100_000, now)
    info, _ = economy.submit(JobRequest(CUBE, 1, "PLA", requester="rita"), 10_000)
    (task,) = store.tasks.find(job_id=info.spec.job_id)
    # the hub's own offer round may have offered it first (no agent answers): take it from
    # wherever it is to done in this machine's name, as an agent's events would
    store.apply_event(task.task_id, ev.TaskOffered(machine_id="k/m"), now)
    offer_no = store.tasks.get(task.task_id).offer_no
    for event in (ev.TaskAccepted(machine_id="k/m", offer_no=offer_no),
                  ev.TaskStarted(machine_id="k/m", offer_no=offer_no),
                  ev.TaskCompleted(machine_id="k/m", offer_no=offer_no, grams=5.0,
                                   machine_hours=0.5)):  # fmt: skip
        assert isinstance(store.apply_event(task.task_id, event, now), Transition), event
    return info.spec.job_id, task.task_id


@pytest.mark.parametrize("role", [Role.ALL, Role.DISPATCHER, Role.API])
def test_a_dispatching_hub_accepts_silent_requesters_parts_and_refunds(
    tmp_path: Path, pg_url: str, role: Role
) -> None:
    broker_port = free_port()
    database = f"sqlite:///{tmp_path / 'hub' / 'fabnet.db'}" if role is Role.ALL else pg_url
    files = write_network(tmp_path, broker_port, (), http_port=free_port(), database_url=database)
    accounts = "file" if role is Role.ALL else "dynsec"
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users, accounts=accounts)
    broker.start()
    config = load_hub_config(files.hub_config)
    config = replace(
        config,
        economy=replace(config.economy, auto_accept_after_s=AUTO_ACCEPT_S),
        broker=replace(config.broker, accounts=accounts),
        public_url="http://127.0.0.1:9",
        health_port=0,
    )
    hub = Hub(config, role, economy_tick_s=TICK_S)
    try:
        hub.start()
        assert hub.service is not None
        job_id, task_id = done_part(hub.store, Economy(hub.service, config.economy))
        store = hub.store
        if role is Role.API:
            time.sleep(AUTO_ACCEPT_S + 4 * TICK_S)  # long enough for a tick that must not run
            assert store.reviews.review_of(task_id) is None
            return
        wait_for(lambda: store.reviews.review_of(task_id) is cr.Review.ACCEPTED, 30,
                 "the hub's tick to accept the part")  # fmt: skip
        wait_for(lambda: store.credits.balance(cr.escrow_account(job_id)) == 0, 30,
                 "the settled job's refund")  # fmt: skip
        assert store.credits.balance(cr.maker_account("k")) == 500 + 125  # 0.5 h + 5 g PLA
        paid = cr.with_fee(625, config.economy.fee_bp)  # the fee on top, rounded as it posts
        assert store.credits.balance(cr.user_account("rita")) == 100_000 - paid
        assert sum(store.credits.balances().values()) == 0
        assert store.credits.unbalanced() == []
    finally:
        hub.stop()
        broker.stop()
