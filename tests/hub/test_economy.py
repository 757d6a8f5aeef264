"""The hub's economy tick and the ``[economy]`` config table (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fabnet.config import load_hub_config
from fabnet.core import credits as cr
from fabnet.core import events as ev
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind
from fabnet.core.tasks import Transition
from fabnet.errors import ConfigError
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.economy import Economy
from fabnet.hub.service import HubService, JobRequest
from fabnet.library.design import library_dir
from fabnet.store import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUBE = "cube-xyz-20mm"


def test_tick_accepts_for_silent_requesters_and_refunds(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    designs = DesignCatalog(store, library_dir())
    designs.register_library(NOW)
    clock = [NOW]
    service = HubService(store, designs, lambda job, why: None, clock=lambda: clock[0])
    economy = Economy(service, cr.Terms(auto_accept_after_s=3600.0), clock=lambda: clock[0])
    store.catalog.add_maker("k", NOW, maker_id="k")
    store.catalog.upsert_machine(Machine("k/m", "k", MachineKind.FDM, (250.0, 210.0, 210.0),
                                         0.4, frozenset({"PLA"})))  # fmt: skip
    store.accounts.add_user("rita", "password1", ["requester"], NOW)
    store.credits.grant("seed", "rita", 100_000, NOW)
    _, cap = economy.submit(JobRequest(CUBE, 1, "PLA", requester="rita"), None)
    assert cap == economy.quote(CUBE, 1, "PLA").quote.highest_mc  # the default cap
    info, _ = economy.submit(JobRequest(CUBE, 1, "PLA", requester="rita"), 10_000)
    (task,) = store.tasks.find(job_id=info.spec.job_id)
    offer = store.apply_event(task.task_id, ev.TaskOffered(machine_id="k/m"), NOW)
    assert isinstance(offer, Transition)
    for event in (ev.TaskAccepted(machine_id="k/m", offer_no=1),
                  ev.TaskStarted(machine_id="k/m", offer_no=1),
                  ev.TaskCompleted(machine_id="k/m", offer_no=1, grams=5.0, machine_hours=0.5)):  # fmt: skip
        assert isinstance(store.apply_event(task.task_id, event, NOW), Transition)
    clock[0] = NOW + timedelta(minutes=59)
    assert economy.tick().accepted == 0  # not yet due
    clock[0] = NOW + timedelta(hours=1)
    report = economy.tick()
    assert (report.accepted, report.refunded) == (1, 1)
    assert store.reviews.review_of(task.task_id) is cr.Review.ACCEPTED
    assert store.credits.balance(cr.escrow_account(info.spec.job_id)) == 0
    assert store.credits.balance(cr.maker_account("k")) == 500 + 125  # 0.5 h + 5 g of PLA
    assert economy.tick().accepted == 0
    store.close()


def test_economy_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hub.toml"
    base = '[broker]\npassword = "hub-broker-secret-0123456789"\n[http]\napi_token = "operator-token-0123456789abcdef"\n'
    path.write_text(base + '[economy]\nfee_percent = 7.5\ncurrency = "CHF"\ncredit_value = 0.5\n'
                    'auto_accept_after_h = 24\nallow_debt_credits = 20\n')  # fmt: skip
    terms = load_hub_config(path).economy
    assert terms == cr.Terms(750, "CHF", 500, 20_000, 86_400.0)
    monkeypatch.setenv("FABNET_ECONOMY_FEE_PERCENT", "2")
    assert load_hub_config(path).economy.fee_bp == 200
    path.write_text(base + '[economy]\ncurrency = "chf"\n')
    with pytest.raises(ConfigError, match="currency must be three capital letters"):
        load_hub_config(path)
    path.write_text(base + "[economy]\nfee = 3\n")
    with pytest.raises(ConfigError, match="fee"):
        load_hub_config(path)
