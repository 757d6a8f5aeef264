"""The economy over HTTP (issue 11): quotes, prices (403 for others' machines and non-
operators' terms), a budgeted submit refused without credits (409), accept (paid once),
reject (once, 409 the second time), balances and statements."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from api_support import CUBE, api_hub, json_of

from fabnet.core import events as ev
from fabnet.core.tasks import Transition
from fabnet.store import Store


def make(store: Store, task_id: str, machine: str) -> None:
    now = datetime.now(UTC)
    offer = store.apply_event(task_id, ev.TaskOffered(machine_id=machine), now)
    assert isinstance(offer, Transition)
    n = offer.task.offer_no
    for event in (
        ev.TaskAccepted(machine_id=machine, offer_no=n),
        ev.TaskStarted(machine_id=machine, offer_no=n),
        ev.TaskCompleted(machine_id=machine, offer_no=n, grams=10.0, machine_hours=1.0),
    ):
        assert isinstance(store.apply_event(task_id, event, now), Transition)


def test_quote_prices_budget_accept_reject(tmp_path: Path) -> None:
    with api_hub(tmp_path) as hub:
        olga, ada, bruno, ravi = (hub.client(n) for n in ("olga", "ada", "bruno", "ravi"))
        terms = {"fee_percent": 10, "currency": "EUR", "credit_value": 1}
        assert hub.client("rita").put("/api/v1/economy/terms", json=terms).status_code == 403
        assert json_of(olga.put("/api/v1/economy/terms", json=terms))["fee_percent"] == 10
        price = {"per_hour_mc": 2000, "per_kg_mc": {"PLA": 30_000}}
        answer = bruno.put("/api/v1/machines/ada/mk3s-1/price", json=price)
        assert answer.status_code == 403
        bad = ada.put("/api/v1/machines/ada/mk3s-1/price",
                      json={"per_hour_mc": 1, "per_kg_mc": {"unobtainium": 1}})  # fmt: skip
        assert bad.status_code == 400 and "unknown material" in json_of(bad)["message"]
        assert ada.put("/api/v1/machines/ada/mk3s-1/price", json=price).status_code == 200
        shown = json_of(ravi.get("/api/v1/machines/ada/mk3s-1/price"))
        assert shown["per_kg_mc"]["PLA"] == 30_000 and shown["per_kg_mc"]["PETG"] == 27_000

        ask = {"design": CUBE, "quantity": 2, "material": "PLA"}
        quote = json_of(ada.post("/api/v1/quotes", json=ask))
        assert {m["machine"] for m in quote["machines"]} == {"ada/mk3s-1", "bruno/ender3-1"}
        assert quote["lowest_mc"] <= quote["typical_mc"] <= quote["highest_mc"]
        assert quote["eta_hours"] > 0
        bad_ask = ada.post("/api/v1/quotes", json={**ask, "material": "cheese"})
        assert bad_ask.status_code == 400

        refused = ravi.post("/api/v1/jobs/budgeted", json=ask)
        assert refused.status_code == 409 and "not enough credits" in json_of(refused)["message"]
        grant = {"user": "ada", "amount_mc": 100_000, "ref": "welcome-ada"}
        assert ada.post("/api/v1/credits/grants", json=grant).status_code == 403
        assert json_of(olga.post("/api/v1/credits/grants", json=grant))["balance_mc"] == 100_000
        assert json_of(olga.post("/api/v1/credits/grants", json=grant))["granted"] is False
        job = json_of(ada.post("/api/v1/jobs/budgeted", json={**ask, "budget_cap_mc": 50_000}))
        assert job["budget_cap_mc"] == 50_000
        assert json_of(ada.get("/api/v1/credits/balance"))["balance_mc"] == 50_000

        first, second = (t.task_id for t in hub.store.tasks.find(job_id=job["id"]))
        make(hub.store, first, "bruno/ender3-1")
        make(hub.store, second, "bruno/ender3-1")
        assert ravi.post(f"/api/v1/tasks/{first}/accept").status_code == 403
        paid = json_of(ada.post(f"/api/v1/tasks/{first}/accept"))
        again = json_of(ada.post(f"/api/v1/tasks/{first}/accept"))
        assert paid["paid_mc"] > 0 and again["already"] and again["paid_mc"] == 0
        back = ada.post(f"/api/v1/tasks/{second}/reject", json={"reason": "damaged"})
        assert json_of(back)["state"] == "queued"
        make(hub.store, second, "ada/mk3s-1")  # made again, on the prosumer's own machine
        twice = ada.post(f"/api/v1/tasks/{second}/reject", json={"reason": "damaged"})
        assert (
            twice.status_code == 409 and "accept it or open a dispute" in json_of(twice)["message"]
        )
        assert json_of(ada.post(f"/api/v1/tasks/{second}/accept"))["paid_mc"] > 0
        lines = json_of(ada.get("/api/v1/credits/statement"))
        kinds = [line["kind"] for line in lines]
        assert kinds[:2] == ["grant", "hold"] and "payment" in kinds and kinds[-1] == "refund"
        balance = json_of(ada.get("/api/v1/credits/balance"))["balance_mc"]
        assert balance == sum(line["amount_mc"] for line in lines)
        assert bruno.get("/api/v1/credits/balance?user=ada").status_code == 403
        books = hub.store.credits.balances()
        assert sum(books.values()) == 0 and books["user:bruno"] > 0  # his user account earns
