"""``GET /metrics``: the hub's figures in Prometheus' text exposition format (version 0.0.4),
written by prometheus-client from this process's ``HubMetrics`` and the store's counts.

Operators only (an operator's bearer token, the hub's ``api_token`` included, or session): the
per-machine failure counts say which maker's machines fail, so they are not public. A
Prometheus job scrapes it with ``authorization: {credentials_file: <token file>}``
(docker/prometheus.yml).

The store's figures (tasks by state, failures by cause and machine, machines held) are read at
scrape time from the tables, so every hub process sharing the database reports the same; the
``HubMetrics`` figures are this process's own and Prometheus sums them over processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from fabnet.hub.metrics import HubMetrics
from fabnet.store.counts import Counts
from fabnet.web.auth import current_user

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class StoreCollector(Collector):
    """The store's counts as metric families, read at each scrape (three read transactions)."""

    def __init__(self, counts: Counts) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        failures = CounterMetricFamily(
            "fabnet_task_failures",
            "Task attempts that ended badly, by cause and machine.",
            labels=["cause", "machine"],
        )
        for (cause, machine), n in sorted(self._counts.failures().items()):
            failures.add_metric([cause.value, machine], n)
        tasks = GaugeMetricFamily("fabnet_tasks", "Tasks by state.", labels=["state"])
        for state, n in self._counts.tasks_by_state().items():
            tasks.add_metric([state.value], n)
        held = GaugeMetricFamily(
            "fabnet_machines_held", "Machines on hold after failing too often in a row."
        )
        held.add_metric([], self._counts.machines_held())
        return [failures, tasks, held]


class _Forward(Collector):
    """Another registry's families, so one exposition holds both without sharing a registry
    (a ``HubMetrics`` may serve several apps; the store collector belongs to this one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


def scrape_registry(counts: Counts, hub: HubMetrics) -> CollectorRegistry:
    """A registry whose exposition is ``hub``'s figures followed by the store's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(hub.registry))
    registry.register(StoreCollector(counts))
    return registry


def make_metrics(counts: Counts, hub: HubMetrics) -> Blueprint:
    """The ``/metrics`` blueprint: 401 without credentials, 403 for a non-operator, 503 when
    the database does not answer."""
    metrics = Blueprint("metrics", __name__)
    registry = scrape_registry(counts, hub)

    @metrics.get("/metrics")
    def show() -> Response:
        user = current_user()
        if user is None:
            return Response("send Authorization: Bearer <operator token>\n", 401,
                            {"WWW-Authenticate": "Bearer"}, content_type=CONTENT_TYPE)  # fmt: skip
        if not user.is_operator:
            return Response("operators only\n", 403, content_type=CONTENT_TYPE)
        try:
            body = generate_latest(registry)
        except SQLAlchemyError as exc:
            log.warning("/metrics: the database does not answer: %s", exc)
            return Response("the database does not answer\n", 503, content_type=CONTENT_TYPE)
        return Response(body, 200, content_type=CONTENT_TYPE)

    return metrics


UNMATCHED_ROUTE = "<unmatched>"  # 404s by path would give a label value per scanner's guess


def time_requests(app: Flask, hub: HubMetrics) -> None:
    """Count every request's latency into ``hub`` by its URL rule (``/tasks/<task_id>``), never
    the raw path, so the label has as many values as the app has routes. A streamed answer
    (server-sent events) is timed until its first byte is ready, not to its end."""

    @app.before_request
    def start_clock() -> None:
        g.fabnet_request_started = time.perf_counter()

    @app.after_request
    def stop_clock(response: Response) -> Response:
        started = g.get("fabnet_request_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else UNMATCHED_ROUTE
            hub.http_request(
                route, request.method, response.status_code, time.perf_counter() - started
            )
        return response
