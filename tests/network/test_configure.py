"""A maker's policy and material change on a real hub reaches the real agent, which applies it
and reports it back: the hub's record then shows what the machine runs with."""

from __future__ import annotations

import pytest
from network_harness import Network, wait_for

from fabnet.errors import InvalidInput, NotFound
from fabnet.hub.rest_client import HubClient
from fabnet.store import Store

MACHINE = "chen/voron-1"


def _reported(store: Store, loaded: str, accepted: set[str], hours: float) -> bool:
    machine = store.catalog.get_machine(MACHINE)
    policy = machine.policy
    return (machine.materials, policy.materials_accepted, policy.max_task_hours) == (
        frozenset({loaded}),
        frozenset(accepted),
        hours,
    )


def test_machine_change_is_pushed_to_the_agent_and_reported_back(network: Network) -> None:
    network.start_hub()
    agent = network.start_agent("chen")
    store = network.store()
    wait_for(lambda: _has_status(store), 20, "chen's machine reported")
    client = HubClient(network.hub_url, network.files.api_token)
    with pytest.raises(InvalidInput, match=r"policy\.windows\[1\]"):
        client.call("PUT", f"/machines/{MACHINE}",
                    {"policy": {"windows": ["* * * * *", "61 * * * *"]}})  # fmt: skip

    body = {
        "materials": ["PETG"],
        "policy": {"materials": ["PETG", "PLA"], "max_task_hours": 3, "auto_accept": False,
                   "windows": ["* * * * *"]},
    }  # fmt: skip
    answer = client.call("PUT", f"/machines/{MACHINE}", body)
    assert (answer["recorded"], answer["pushed"]) == (True, True), answer

    wait_for(lambda: _reported(store, "PETG", {"PETG", "PLA"}, 3.0), 10,
             "the agent's new status in the hub store")  # fmt: skip
    machine = store.catalog.get_machine(MACHINE)
    assert machine.policy.auto_accept is False
    assert [w.text for w in machine.policy.windows] == ["* * * * *"]
    config = agent.runners["voron-1"].setup.config
    assert (config.material, config.policy.materials) == ("PETG", ("PETG", "PLA"))


def _has_status(store: Store) -> bool:
    try:
        return store.catalog.get_machine(MACHINE).last_seen is not None
    except NotFound:  # until the first status lands
        return False
