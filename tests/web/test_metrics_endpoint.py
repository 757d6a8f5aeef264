"""``/metrics`` from prometheus-client: the ``HubMetrics`` the app is given (or a fresh one)
beside the store's counts, each request timed by its route template, operators only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiHub, api_hub
from prometheus_client.parser import text_string_to_metric_families

from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.metrics import HubMetrics
from fabnet.hub.service import HubService
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.app import WebSettings

TOKEN = "fab_" + "7" * 40


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def scrape(hub: ApiHub) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = hub.client("olga").get("/metrics")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for s in family.samples
    }


def test_the_app_reports_the_hub_metrics_it_is_given(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    try:
        service = HubService(store, DesignCatalog(store, tmp_path / "library"), lambda j, r: None)
        metrics = HubMetrics()
        metrics.offers_sent(7)
        settings = WebSettings(data_dir=tmp_path / "hub", metrics=metrics)
        app = create_app(service, ArtifactStore(tmp_path / "artifacts"), TOKEN, settings=settings)
        answer = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert "fabnet_offers_sent_total 7.0" in answer.get_data(as_text=True).splitlines()
        assert app.extensions["fabnet_metrics"] is metrics
    finally:
        store.close()


def test_the_scrape_has_the_store_counts_and_the_hubs_own_figures(hub: ApiHub) -> None:
    hub.job("rita", quantity=3)
    got = scrape(hub)
    assert got[("fabnet_tasks", (("state", "queued"),))] == 3
    assert got[("fabnet_tasks", (("state", "done"),))] == 0
    assert got[("fabnet_machines_held", ())] == 0
    assert got[("fabnet_offers_sent_total", ())] == 0  # a fresh HubMetrics: present, at 0
    assert got[("fabnet_offer_answers_total", (("outcome", "declined"),))] == 0


def test_requests_are_timed_by_route_template_not_path(hub: ApiHub) -> None:
    job_id = hub.job("rita")
    for _ in range(2):
        assert hub.client("rita").get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert hub.client("rita").get("/api/v1/jobs/no-such-job").status_code == 404
    assert hub.client("rita").get("/no/such/page/at/all").status_code == 404
    got = scrape(hub)
    route = (("method", "GET"), ("route", "/api/v1/jobs/<job_id>"))
    assert got[("fabnet_http_requests_total", (*route, ("status", "200")))] == 2
    assert got[("fabnet_http_requests_total", (*route, ("status", "404")))] == 1
    assert got[("fabnet_http_request_duration_seconds_count", route)] == 3
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert got[("fabnet_http_requests_total", unmatched)] == 1
    assert not any(job_id in labels for _, labels in got for labels in dict(labels).values())
