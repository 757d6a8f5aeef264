"""Plain ``POST /jobs`` and the hub's ``[economy]`` (issue 11). With ``require_credits`` every
job holds its cost (its ``budget_cap_mc``, else the quote's highest price) from the requester's
credits and is refused beyond credits + ``allow_debt_credits``; without it (the default) a job
holds nothing unless it names a budget. ``fabnet submit`` works for a requester with credits,
and the config's terms reach the API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from fabnet.config import load_hub_config
from fabnet.core import credits as cr
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, MachineState
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.cli import submit_command
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.economy import Economy
from fabnet.hub.service import HubService
from fabnet.library.design import library_dir
from fabnet.sim.makers import write_network
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.app import WebSettings

CUBE = "cube-xyz-20mm"
TOKEN = "bootstrap-token-for-economy-tests"
ASK = {"design": CUBE, "quantity": 2, "material": "PLA"}


@dataclass
class App:
    app: Flask
    store: Store
    economy: Economy
    tokens: dict[str, str]

    def client(self, name: str) -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.tokens[name]}"
        return client

    def balance(self, user: str) -> int:
        return self.store.credits.balance(cr.user_account(user))

    def held(self, job_id: str) -> int:
        return self.store.credits.balance(cr.escrow_account(job_id))


@contextmanager
def hub_app(tmp_path: Path, terms: cr.Terms, *, machine: bool = True) -> Iterator[App]:
    """The hub's app over SQLite with ``terms`` as its [economy], users olga (operator) and
    rita (requester), and (``machine``) one idle PLA printer to price the quote."""
    now = datetime.now(UTC)
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    designs = DesignCatalog(store, library_dir())
    designs.register_library(now)
    service = HubService(store, designs, lambda job, why: None)
    settings = WebSettings(data_dir=tmp_path / "hub", economy=terms)
    app = create_app(service, ArtifactStore(tmp_path / "artifacts"), TOKEN, settings=settings)
    app.config["TESTING"] = True
    tokens = {}
    for name, roles in (("olga", ["operator"]), ("rita", ["requester"])):
        account = store.accounts.add_user(name, "password1", roles, now)
        tokens[name] = store.accounts.issue_token(account.user_id, "tests", now)[0]
    if machine:
        store.catalog.add_maker("k", now, maker_id="k")
        store.catalog.upsert_machine(Machine("k/m", "k", MachineKind.FDM, (250.0, 210.0, 210.0),
                                             0.4, frozenset({"PLA"}), state=MachineState.IDLE))  # fmt: skip
    try:
        yield App(app, store, Economy(service, terms), tokens)
    finally:
        store.close()


def body(answer: Any) -> Any:
    data = answer.get_json()
    assert data is not None, answer.get_data(as_text=True)
    return data


def test_required_credits_hold_each_jobs_cost_and_refuse_beyond(tmp_path: Path) -> None:
    with hub_app(tmp_path, cr.Terms(require_credits=True)) as hub:
        rita = hub.client("rita")
        refused = rita.post("/api/v1/jobs", json=ASK)
        assert refused.status_code == 409, refused.get_data(as_text=True)
        assert "not enough credits" in body(refused)["message"]
        assert body(rita.get("/api/v1/jobs")) == []  # nothing left queued
        hub.store.credits.grant("seed", "rita", 100_000, datetime.now(UTC))
        highest = hub.economy.quote(CUBE, 2, "PLA").quote.highest_mc
        assert highest is not None and 0 < highest < 100_000
        job = body(rita.post("/api/v1/jobs", json=ASK))
        assert job["state"] == "queued" and hub.held(job["id"]) == highest
        assert hub.balance("rita") == 100_000 - highest
        capped = body(rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 5_000}))
        assert hub.held(capped["id"]) == 5_000
        assert hub.balance("rita") == 100_000 - highest - 5_000
        too_dear = rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 100_000})
        assert too_dear.status_code == 409
        assert sum(hub.store.credits.balances().values()) == 0
        assert hub.store.credits.unbalanced() == []


def test_allowed_debt_is_honoured_and_limited(tmp_path: Path) -> None:
    with hub_app(tmp_path, cr.Terms(require_credits=True, debt_limit_mc=8_000)) as hub:
        rita = hub.client("rita")
        job = body(rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 6_000}))
        assert hub.held(job["id"]) == 6_000 and hub.balance("rita") == -6_000
        over = rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 3_000})
        assert over.status_code == 409 and "debt allowed: 8000 mc" in body(over)["message"]
        assert body(rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 2_000}))
        assert hub.balance("rita") == -8_000


def test_without_required_credits_only_a_named_budget_is_held(tmp_path: Path) -> None:
    with hub_app(tmp_path, cr.Terms(), machine=False) as hub:
        rita = hub.client("rita")
        job = body(rita.post("/api/v1/jobs", json=ASK))  # no machine, no credits: still queued
        assert job["state"] == "queued" and hub.held(job["id"]) == 0
        assert hub.store.credits.balances() == {}
        budgeted = rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 1_000})
        assert budgeted.status_code == 409 and "not enough credits" in body(budgeted)["message"]


def test_required_credits_without_any_machine_to_price_it_ask_for_a_cap(tmp_path: Path) -> None:
    with hub_app(tmp_path, cr.Terms(require_credits=True), machine=False) as hub:
        hub.store.credits.grant("seed", "rita", 10_000, datetime.now(UTC))
        rita = hub.client("rita")
        unpriced = rita.post("/api/v1/jobs", json=ASK)
        assert unpriced.status_code == 409 and "budget_cap_mc" in body(unpriced)["message"]
        assert body(rita.post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 4_000}))
        assert hub.balance("rita") == 6_000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[App, str]]:
    with hub_app(tmp_path, cr.Terms(require_credits=True)) as hub:
        server = make_server("127.0.0.1", 0, hub.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield hub, f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()


def test_fabnet_submit_with_credits_holds_them(served: tuple[App, str]) -> None:
    hub, url = served
    args = [
        CUBE,
        "--quantity",
        "2",
        "--material",
        "pla",
        "--hub",
        url,
        "--token",
        hub.tokens["rita"],
    ]
    refused = CliRunner().invoke(submit_command, args)
    assert refused.exit_code != 0 and "not enough credits" in str(refused.exception)
    hub.store.credits.grant("seed", "rita", 50_000, datetime.now(UTC))
    result = CliRunner().invoke(submit_command, args)
    assert result.exit_code == 0, result.output
    job_id = result.output.split()[1].rstrip(":")
    held = hub.held(job_id)
    assert held > 0 and hub.balance("rita") == 50_000 - held

    # --budget names the cap in credits, exactly: 12.345 credits are 12,345 mc held
    budgeted = CliRunner().invoke(submit_command, [*args, "--budget", "12.345"])
    assert budgeted.exit_code == 0, budgeted.output
    assert hub.held(budgeted.output.split()[1].rstrip(":")) == 12_345
    for bad in ("-1", "0", "1.0005", "lots", "nan"):
        refused = CliRunner().invoke(submit_command, [*args, "--budget", bad])
        assert refused.exit_code == 2 and "--budget" in refused.output, (bad, refused.output)


def test_the_configs_economy_reaches_the_api(tmp_path: Path) -> None:
    config = write_network(tmp_path / "net", 1883, (), http_port=5000).hub_config
    with config.open("a") as out:
        out.write("\n[economy]\nrequire_credits = true\nallow_debt_credits = 2.5\n")
    terms = WebSettings.from_hub_config(load_hub_config(config), "http://x").economy
    assert terms is not None and terms.require_credits and terms.debt_limit_mc == 2_500
    with hub_app(tmp_path, terms) as hub:
        assert body(hub.client("rita").get("/api/v1/economy/terms"))["allow_debt_mc"] == 2_500
        refused = hub.client("rita").post("/api/v1/jobs", json={**ASK, "budget_cap_mc": 3_000})
        assert refused.status_code == 409
