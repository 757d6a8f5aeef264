"""A maker's change written "petg" reaches the real agent as PETG, so the hub's matcher (which
compares exactly) sees the table's spelling."""

from __future__ import annotations

from network_harness import Network, wait_for

from fabnet.errors import NotFound
from fabnet.hub.rest_client import HubClient
from fabnet.store import Store

MACHINE = "chen/voron-1"


def _reported(store: Store) -> bool:
    try:
        machine = store.catalog.get_machine(MACHINE)
    except NotFound:
        return False
    return machine.materials == frozenset({"PETG"}) and machine.policy.materials_accepted == {
        "PETG",
        "PLA",
    }


def test_lower_case_names_are_pushed_canonical(network: Network) -> None:
    network.start_hub()
    agent = network.start_agent("chen")
    client = HubClient(network.hub_url, network.files.api_token)
    wait_for(lambda: _seen(network.store()), 20, "chen's machine reported")
    body = {"materials": ["petg"], "policy": {"materials": ["Petg", "pla"]}}
    answer = client.call("PUT", f"/machines/{MACHINE}", body)
    assert answer["pushed"] is True, answer
    store = network.store()
    wait_for(lambda: _reported(store), 10, "the agent's canonical status in the hub store")
    config = agent.runners["voron-1"].setup.config
    assert (config.material, config.policy.materials) == ("PETG", ("PETG", "PLA"))


def _seen(store: Store) -> bool:
    try:
        return store.catalog.get_machine(MACHINE).last_seen is not None
    except NotFound:
        return False
