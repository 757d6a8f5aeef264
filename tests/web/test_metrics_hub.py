"""``HubMetrics``: each call shows in its own registry's exposition, two instances never share a
figure, bus counters are read at scrape time, and bad figures are refused by name."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fabnet.bus.client import BusCounters
from fabnet.errors import InvalidInput
from fabnet.hub.metrics import NULL_METRICS, HubMetrics


def samples(metrics: HubMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``metrics``' registry: (name, sorted labels) -> value."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_call_is_counted_under_its_name() -> None:
    m = HubMetrics()
    m.offers_sent()
    m.offers_sent(3)
    m.offer_answered("accepted")
    m.offer_answered("lapsed")
    m.offer_answered("lapsed")
    m.lease_expired(2)
    m.requeued("lease_expired")
    m.task_done(3.5)
    m.task_done(7200.0)
    m.http_request("/api/v1/tasks/<task_id>", "GET", 200, 0.02)
    m.http_request("/api/v1/tasks/<task_id>", "GET", 404, 0.01)
    m.artifact_served(1234)
    got = samples(m)
    assert got[("fabnet_offers_sent_total", ())] == 4
    assert got[("fabnet_offer_answers_total", (("outcome", "accepted"),))] == 1
    assert got[("fabnet_offer_answers_total", (("outcome", "declined"),))] == 0  # shown at 0
    assert got[("fabnet_offer_answers_total", (("outcome", "lapsed"),))] == 2
    assert got[("fabnet_lease_expiries_total", ())] == 2
    assert got[("fabnet_requeues_total", (("cause", "lease_expired"),))] == 1
    assert got[("fabnet_offer_to_done_seconds_count", ())] == 2
    assert got[("fabnet_offer_to_done_seconds_sum", ())] == 7203.5
    assert got[("fabnet_offer_to_done_seconds_bucket", (("le", "5.0"),))] == 1
    assert got[("fabnet_offer_to_done_seconds_bucket", (("le", "86400.0"),))] == 2
    route = (("method", "GET"), ("route", "/api/v1/tasks/<task_id>"))
    assert got[("fabnet_http_request_duration_seconds_count", route)] == 2
    assert got[("fabnet_http_requests_total", (*route, ("status", "404")))] == 1
    assert got[("fabnet_artifact_bytes_served_total", ())] == 1234


def test_two_instances_keep_their_own_figures() -> None:
    first, second = HubMetrics(), HubMetrics()
    first.offers_sent(5)
    assert samples(first)[("fabnet_offers_sent_total", ())] == 5
    assert samples(second)[("fabnet_offers_sent_total", ())] == 0
    assert first.registry is not second.registry is not NULL_METRICS.registry


def test_bus_counters_are_read_at_each_scrape() -> None:
    m = HubMetrics()
    now = {"received": 3}

    def counters() -> BusCounters:
        return BusCounters(
            received=now["received"], handled=2, published=9, dropped={"not_json": 1}, connects=1
        )

    m.watch_bus("hub", counters)
    got = samples(m)
    assert got[("fabnet_bus_messages_received_total", (("client", "hub"),))] == 3
    assert got[("fabnet_bus_messages_published_total", (("client", "hub"),))] == 9
    dropped = "fabnet_bus_messages_dropped_total"
    assert got[(dropped, (("client", "hub"), ("reason", "not_json")))] == 1
    assert got[(dropped, (("client", "hub"), ("reason", "too_large")))] == 0
    now["received"] = 10
    assert samples(m)[("fabnet_bus_messages_received_total", (("client", "hub"),))] == 10


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m: m.offer_answered("maybe"), "offer outcome"),
        (lambda m: m.offers_sent(-1), "offers_sent n must be >= 0, got -1"),
        (lambda m: m.task_done(-0.5), "offer_to_done_s must be >= 0"),
        (lambda m: m.requeued(""), "requeue cause"),
        (lambda m: m.artifact_served(-3), "artifact_served n_bytes"),
    ],
)
def test_bad_figures_are_refused_by_name(call: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        call(HubMetrics())  # type: ignore[operator]
