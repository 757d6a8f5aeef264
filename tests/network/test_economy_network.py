"""Issue 11's promise on a real network with kills: a hub requiring credits holds a job's quote
from its requester, an agent is SIGKILLed mid-task, the broker and then the hub are killed and
restarted while parts are accepted (some twice) over the REST API; afterwards every part is done
and counted once, each task paid exactly once, the job refunded what it did not spend, and the
books balance: every posting's legs sum to zero and so do all accounts together."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime

import pytest
from network_harness import LEASE_S, Network, wait_for

from fabnet.core import credits as cr
from fabnet.core.states import MachineState, TaskState
from fabnet.errors import FabnetError
from fabnet.hub.rest_client import HubClient
from fabnet.store import Store

QUANTITY = 8
GRANT_MC = 1_000_000
MACHINES = 5  # network_harness.TEST_MAKERS


def _done(store: Store, job_id: str) -> list[str]:
    return [t.task_id for t in store.tasks.find(job_id=job_id) if t.state is TaskState.DONE]


def _running_on(store: Store, job_id: str, maker: str) -> str | None:
    for task in store.tasks.find(job_id=job_id):
        if task.state is TaskState.RUNNING and (task.machine_id or "").startswith(maker + "/"):
            return task.task_id
    return None


def _accept(client: HubClient, task_id: str) -> dict[str, object]:
    answer = client.call("POST", f"/tasks/{task_id}/accept")
    assert isinstance(answer, dict) and answer["review"] == "accepted", answer
    return answer


def _accept_while_up(client: HubClient, task_ids: list[str]) -> int:
    """Accept ``task_ids`` while the hub answers (it may be restarting); how many went."""
    accepted = 0
    for task_id in task_ids:
        try:
            _accept(client, task_id)
        except FabnetError:  # the hub is away a moment: the next round accepts it
            break
        accepted += 1
    return accepted


def _assert_books_balance(store: Store, job_id: str, paid_tasks: set[str]) -> None:
    assert store.credits.unbalanced() == [], "a posting whose legs do not sum to zero"
    balances = store.credits.balances()
    assert sum(balances.values()) == 0, balances
    payments = store.credits.postings(cr.PostingKind.PAYMENT, job_id=job_id)
    per_task = Counter(p.task_id for p in payments)
    assert set(per_task) == paid_tasks and set(per_task.values()) == {1}, per_task
    assert store.credits.balance(cr.escrow_account(job_id)) == 0, "the rest was not refunded"
    spent = GRANT_MC - store.credits.balance(cr.user_account("tester"))
    assert spent == sum(p.amount_for(cr.escrow_account(job_id)) * -1 for p in payments)
    earned = sum(v for a, v in balances.items() if a.startswith(("maker:", "user:")))
    assert earned + balances.get(cr.FEE_ACCOUNT, 0) == GRANT_MC  # where the grant went
    assert balances.get(cr.FEE_ACCOUNT, 0) > 0


def test_credits_balance_across_agent_broker_and_hub_kills(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABNET_ECONOMY_REQUIRE_CREDITS", "true")  # the spawned hubs read it
    network.spawn_hub()
    victim = network.spawn_agent("ada")
    for agent_id in ("bruno", "chen"):
        network.start_agent(agent_id)
    store = network.store()

    def machines_up() -> bool:
        machines = store.catalog.list_machines()
        return sum(m.state is not MachineState.OFFLINE for m in machines) == MACHINES

    wait_for(machines_up, 60, "every machine to report")
    client = HubClient(network.hub_url, network.files.api_token)
    ask = {"design": "cube-xyz-20mm", "quantity": QUANTITY, "material": "PLA",
           "requester": "tester"}  # fmt: skip
    with pytest.raises(FabnetError, match="not enough credits"):
        client.call("POST", "/jobs", ask)
    store.accounts.add_user("tester", "password1", ["requester"], datetime.now(UTC))
    grant = {"user": "tester", "amount_mc": GRANT_MC, "ref": "network-test"}
    assert client.call("POST", "/credits/grants", grant)["balance_mc"] == GRANT_MC
    job_id = str(client.call("POST", "/jobs", ask)["id"])
    held = store.credits.balance(cr.escrow_account(job_id))
    assert 0 < held < GRANT_MC  # the quote's highest price, held at submit
    accepted: set[str] = set()

    wait_for(lambda: _running_on(store, job_id, "ada") is not None, 60, "a task running on ada")
    victim.send_signal(signal.SIGKILL)
    victim.wait(5)
    wait_for(lambda: len(_done(store, job_id)) >= 2, 60 + LEASE_S, "two parts done")
    first = _done(store, job_id)[:2]
    for task_id in first:
        _accept(client, task_id)
    again = _accept(client, first[0])  # clicked twice: paid once
    assert again["already"] is True and again["paid_mc"] == 0
    accepted.update(first)

    network.broker.kill()
    network.broker.start()
    wait_for(lambda: len(_done(store, job_id)) >= 4, 90, "four parts done after the broker")
    hub = network.hub_proc
    assert hub is not None
    hub.send_signal(signal.SIGKILL)
    hub.wait(5)
    network.spawn_hub()
    for task_id in sorted(accepted):  # accepted before the crash: still paid once
        assert _accept(client, task_id)["already"] is True

    def all_done_and_accepted() -> bool:
        todo = [t for t in _done(store, job_id) if t not in accepted]
        accepted.update(todo[: _accept_while_up(client, todo)])
        return len(accepted) == QUANTITY

    wait_for(all_done_and_accepted, 150, "every part done and accepted after the hub restart")
    assert store.jobs.get(job_id).state.value == "done"
    entries = [e for e in store.ledger.entries() if e.job_id == job_id]
    assert len(entries) == QUANTITY and len({e.task_id for e in entries}) == QUANTITY
    _assert_books_balance(store, job_id, accepted)
