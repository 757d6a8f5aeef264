"""``HubMetrics``: what one hub process counts as it works — offers, answers, lease expiries,
requeues, offer-to-done latency, its bus clients, HTTP latency and artifact bytes — for
``/metrics`` (prometheus-client).

Each instance has its own ``CollectorRegistry``, so tests and several hubs in one process never
collide in prometheus-client's global registry. Counts that every hub sharing the database must
agree on (tasks by state, failures) are not kept here: ``fabnet.web.metrics`` reads them from
the store at scrape time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from fabnet.bus.client import BusCounters
from fabnet.bus.schema import DropReason
from fabnet.errors import InvalidInput

__all__ = ["NULL_METRICS", "OFFER_OUTCOMES", "OFFER_TO_DONE_BUCKETS_S", "HubMetrics"]

log = logging.getLogger(__name__)

OFFER_OUTCOMES = ("accepted", "declined", "lapsed")

# one second (a sim machine of no run time) to a day (a long print), roughly ×2–×3 apart
OFFER_TO_DONE_BUCKETS_S = (
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0,
)  # fmt: skip

# a Flask request: a millisecond (health check) to half a minute (an upload being sliced)
HTTP_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


# BusCounters field -> the metric it is exposed as, and its help text (one per client).
BUS_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("received", "fabnet_bus_messages_received", "MQTT messages that arrived, valid or not."),
    ("handled", "fabnet_bus_messages_handled", "Arrived messages a handler took without error."),
    ("published", "fabnet_bus_messages_published",
     "Messages published (sent, or queued while offline)."),
    ("handler_errors", "fabnet_bus_handler_errors", "Arrived messages whose handler raised."),
    ("refused", "fabnet_bus_refused",
     "Publishes or subscriptions the broker refused, or a full queue."),
    ("connects", "fabnet_bus_connects", "Connections made to the broker (reconnects included)."),
)  # fmt: skip


class _BusCollector(Collector):
    """Reads each watched bus client's counters at scrape time (they are kept by the client)."""

    def __init__(self) -> None:
        self._watched: dict[str, Callable[[], BusCounters]] = {}
        self._lock = threading.Lock()

    def watch(self, name: str, counters: Callable[[], BusCounters]) -> None:
        with self._lock:
            self._watched[name] = counters

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            watched = sorted(self._watched.items())
        families = {
            field: CounterMetricFamily(name, help_text, labels=["client"])
            for field, name, help_text in BUS_COUNTERS
        }
        dropped = CounterMetricFamily(
            "fabnet_bus_messages_dropped",
            "Arrived messages rejected (logged and not handled), by reason.",
            labels=["client", "reason"],
        )
        for name, counters in watched:
            try:
                c = counters()
            except Exception:  # a scrape must not fail because one client's snapshot did
                log.exception("bus counters of %s could not be read", name)
                continue
            for key, family in families.items():
                family.add_metric([name], getattr(c, key))
            reasons = {r.value: 0 for r in DropReason} | dict(c.dropped)
            for reason, n in sorted(reasons.items()):
                dropped.add_metric([name, reason], n)
        yield from families.values()
        yield dropped


class HubMetrics:
    """The hub's own counters and histograms; every method is thread-safe and cheap (a lock
    and an add), so the dispatcher and Flask's threads call them inline."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._offers_sent = Counter("fabnet_offers_sent", "Task offers sent to agents.", registry=r)
        self._offer_answers = Counter(
            "fabnet_offer_answers",
            "Offers answered by agents (accepted, declined) or lapsed unanswered.",
            ["outcome"],
            registry=r,
        )
        for outcome in OFFER_OUTCOMES:
            self._offer_answers.labels(outcome)
        self._lease_expired = Counter(
            "fabnet_lease_expiries", "Claimed or running tasks whose lease ran out.", registry=r
        )
        self._requeued = Counter(
            "fabnet_requeues", "Tasks sent back to the queue, by cause.", ["cause"], registry=r
        )
        self._offer_to_done = Histogram(
            "fabnet_offer_to_done_seconds",
            "From the offer of a task's last attempt to its completion.",
            buckets=OFFER_TO_DONE_BUCKETS_S,
            registry=r,
        )
        self._http_seconds = Histogram(
            "fabnet_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=HTTP_BUCKETS_S,
            registry=r,
        )
        self._http_requests = Counter(
            "fabnet_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self._artifact_bytes = Counter(
            "fabnet_artifact_bytes_served", "G-code bytes sent to agents.", registry=r
        )
        self._bus = _BusCollector()
        r.register(self._bus)

    def offers_sent(self, n: int = 1) -> None:
        self._offers_sent.inc(_count(n, "offers_sent n"))

    def offer_answered(self, outcome: str) -> None:
        """``outcome``: ``accepted``, ``declined`` or ``lapsed`` (no answer in time)."""
        if outcome not in OFFER_OUTCOMES:
            raise InvalidInput(f"offer outcome must be one of {OFFER_OUTCOMES}, got {outcome!r}")
        self._offer_answers.labels(outcome).inc()

    def lease_expired(self, n: int = 1) -> None:
        self._lease_expired.inc(_count(n, "lease_expired n"))

    def requeued(self, cause: str) -> None:
        """A task went back to ``queued``; ``cause`` is a short fixed word (a failure cause,
        ``declined``, ``lapsed``, ``lease_expired``), never free text: it is a label."""
        if not cause:
            raise InvalidInput("requeue cause must not be empty")
        self._requeued.labels(cause).inc()

    def task_done(self, offer_to_done_s: float) -> None:
        """A task finished; ``offer_to_done_s`` seconds since its last attempt's offer."""
        if offer_to_done_s < 0:
            raise InvalidInput(f"offer_to_done_s must be >= 0, got {offer_to_done_s}")
        self._offer_to_done.observe(offer_to_done_s)

    def watch_bus(self, name: str, counters: Callable[[], BusCounters]) -> None:
        """Report ``counters()`` (a bus client's snapshot) at each scrape as client ``name``;
        watching a name again replaces the first."""
        self._bus.watch(name, counters)

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is the URL rule (``/api/v1/tasks/<task_id>``), never
        the raw path, so the label's values stay as few as the app's routes."""
        self._http_seconds.labels(route, method).observe(max(0.0, seconds))
        self._http_requests.labels(route, method, str(status)).inc()

    def artifact_served(self, n_bytes: int) -> None:
        self._artifact_bytes.inc(_count(n_bytes, "artifact_served n_bytes"))


def _count(n: int, what: str) -> int:
    if n < 0:
        raise InvalidInput(f"{what} must be >= 0, got {n}")
    return n


NULL_METRICS = HubMetrics()
"""The default where no instance is wired: counts into a private registry nobody scrapes."""
