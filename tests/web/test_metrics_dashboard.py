"""docker/grafana/fabnet.json and docker/prometheus.yml: the dashboard parses, and every metric
it queries is in a real ``/metrics`` scrape of a hub app (a typo in a query would show an empty
panel, not an error); the scrape config sends a bearer token from a file to ``/metrics``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from api_support import ApiHub, api_hub
from prometheus_client.parser import text_string_to_metric_families

from fabnet.bus.client import BusClient, BusSettings
from fabnet.core import events as ev
from fabnet.core.states import FailureCause
from fabnet.hub.metrics import HubMetrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DASHBOARD = DOCKER / "grafana" / "fabnet.json"
METRIC = re.compile(r"\bfabnet_[a-z0-9_]+")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def queries() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["uid"] and board["title"]
    found = [
        target["expr"]
        for panel in board["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    assert len(found) >= 10
    return found


def exercise(hub: ApiHub) -> None:
    """Give every labelled series a value: a failed attempt, a requeue, a done task, a bus
    client to read and one timed request."""
    task_id = hub.offer(hub.job("rita"), "ada/mk3s-1")
    n = hub.store.tasks.get(task_id).offer_no
    for event in (
        ev.TaskAccepted(machine_id="ada/mk3s-1", offer_no=n),
        ev.TaskFailed(machine_id="ada/mk3s-1", offer_no=n, reason="MINTEMP",
                      cause=FailureCause.THERMAL_FAULT),
    ):  # fmt: skip
        hub.store.apply_event(task_id, event, datetime.now(UTC))
    metrics: HubMetrics = hub.app.extensions["fabnet_metrics"]
    metrics.requeued("thermal_fault")
    metrics.task_done(12.0)
    bus = BusClient(BusSettings("127.0.0.1", 1, "hub", "hub-password", "fabnet-hub-dash"))
    metrics.watch_bus("hub", bus.counters)
    assert hub.client("rita").get("/api/v1/jobs").status_code == 200


def test_every_metric_the_dashboard_queries_is_in_a_real_scrape(hub: ApiHub) -> None:
    exercise(hub)
    answer = hub.client("olga").get("/metrics")
    assert answer.status_code == 200
    scraped: set[str] = set()
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        scraped.update(s.name for s in family.samples)
    wanted = {name for expr in queries() for name in METRIC.findall(expr)}
    assert wanted - scraped == set(), f"queried but not served: {sorted(wanted - scraped)}"
    # the dashboard covers what the issue lists
    for name in ("fabnet_tasks", "fabnet_offer_answers_total", "fabnet_lease_expiries_total",
                 "fabnet_requeues_total", "fabnet_offer_to_done_seconds_bucket",
                 "fabnet_bus_messages_dropped_total", "fabnet_http_request_duration_seconds_bucket",
                 "fabnet_artifact_bytes_served_total"):  # fmt: skip
        assert name in wanted, name


def test_the_scrape_config_sends_a_token_file_to_metrics() -> None:
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].startswith("/")
    assert "credentials" not in job["authorization"]  # no token in the file itself
    assert job["static_configs"][0]["targets"] == ["hub:5000"]
