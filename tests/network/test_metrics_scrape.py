"""``/metrics`` during and after a real run (issue 9): a ``fabnet hub`` process, agents with sim
machines, Mosquitto. The scraped figures agree with the tasks' own rows: during the run the
scrape lies between two reads of the store taken around it, after the run it equals them; the
hub's own counters agree with what happened (offers >= tasks done, one histogram observation
per task done, one artifact download per attempt)."""

from __future__ import annotations

import urllib.request
from collections import Counter

from network_harness import Network, wait_for
from prometheus_client.parser import text_string_to_metric_families

from fabnet.core.states import TaskState
from fabnet.hub.rest_client import HubClient
from fabnet.store import Store

QUANTITY = 10
ARTIFACT_ROUTE = "/artifacts/<task_id>/<int:offer_no>"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(net: Network) -> Samples:
    """One real scrape, as Prometheus makes it (the operator's bearer token)."""
    request = urllib.request.Request(
        f"{net.hub_url}/metrics", headers={"Authorization": f"Bearer {net.files.api_token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scraped_states(samples: Samples) -> dict[str, int]:
    return {
        dict(labels)["state"]: int(value)
        for (name, labels), value in samples.items()
        if name == "fabnet_tasks"
    }


def stored_states(store: Store) -> dict[str, int]:
    """Tasks by state counted from the task rows themselves (not from any kept counter)."""
    found = Counter(t.state.value for t in store.tasks.find(limit=100_000))
    return {state.value: found.get(state.value, 0) for state in TaskState}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (n, have), value in samples.items()
        if n == name and labels.items() <= dict(have).items()
    )


def test_the_scrape_agrees_with_the_store_during_and_after_a_run(network: Network) -> None:
    network.spawn_hub()
    for agent_id in ("ada", "bruno", "chen"):
        network.start_agent(agent_id)
    client = HubClient(network.hub_url, network.files.api_token)
    job = client.call(
        "POST",
        "/jobs",
        {"design": "cube-xyz-20mm", "quantity": QUANTITY, "material": "PLA", "requester": "tester"},
    )
    store = network.store()
    try:
        wait_for(lambda: stored_states(store)["done"] >= 1, 120, "a first task done")
        before = stored_states(store)
        during = scraped_states(scrape(network))
        after = stored_states(store)
        assert sum(during.values()) == QUANTITY, during
        assert before["done"] <= during["done"] <= after["done"], (before, during, after)

        wait_for(lambda: client.call("GET", f"/jobs/{job['id']}")["state"] == "done", 180,
                 "the job to finish")  # fmt: skip
        samples = scrape(network)
        assert scraped_states(samples) == stored_states(store)
        assert scraped_states(samples)["done"] == QUANTITY
        tried = [a for t in store.tasks.find() for a in store.tasks.get(t.task_id).attempts]
        attempts = len(tried)
        failed = sum(1 for a in tried if a.failure is not None)
        assert total(samples, "fabnet_task_failures_total") == failed

        # the hub's own counters, kept in its process
        downloads = total(samples, "fabnet_http_requests_total", route=ARTIFACT_ROUTE,
                          status="200")  # fmt: skip
        assert QUANTITY <= downloads <= attempts
        assert total(samples, "fabnet_artifact_bytes_served_total") >= downloads * 1000
        assert total(samples, "fabnet_offers_sent_total") >= QUANTITY
        assert total(samples, "fabnet_offer_answers_total", outcome="accepted") >= QUANTITY
        assert total(samples, "fabnet_offer_to_done_seconds_count") == QUANTITY
        assert total(samples, "fabnet_bus_messages_received_total") > 0
    finally:
        store.close()
