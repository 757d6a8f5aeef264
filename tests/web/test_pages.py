"""The dashboard's pages through Flask's test client against a real SQLite store: who sees
what, what each page shows, the request form, offers, the layer preview and ``/events``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_support import CUBE, WebHub, csrf_in, make_web_hub, run_job

from fabnet.core.states import TaskState


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHub]:
    web = make_web_hub(tmp_path_factory.mktemp("web"))
    yield web
    web.store.close()


@pytest.fixture(scope="module")
def job(hub: WebHub) -> tuple[str, list[str]]:
    return run_job(hub, "rita")


def test_pages_need_a_login(hub: WebHub) -> None:
    client = hub.client()
    for path in ("/", "/designs", "/jobs", "/maker"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next="), path
    assert client.get("/events").status_code == 401


def test_login_page_is_ours_and_carries_a_csrf_token(hub: WebHub) -> None:
    page = hub.client().get("/login").get_data(as_text=True)
    assert 'id="login-submit"' in page and csrf_in(page)


def test_operator_overview_shows_counts_charts_wall_and_stuck_tasks(
    hub: WebHub, job: tuple[str, list[str]]
) -> None:
    page = hub.client("olga").get("/").get_data(as_text=True)
    assert 'id="grams-total" data-live="totals.grams_text">7.5 g<' in page
    assert 'class="chart area-chart"' in page and 'data-key="PLA"' in page
    assert 'data-machine="ada/mk3s-1"' in page and 'data-machine="bruno/ender3-1"' in page
    assert 'data-live="counts.done">1<' in page
    assert 'data-live="counts.offered">1<' in page


def test_other_roles_are_sent_to_their_own_page(hub: WebHub) -> None:
    assert hub.client("rita").get("/").headers["Location"] == "/jobs"
    assert hub.client("ada").get("/").headers["Location"] == "/maker"


def test_library_lists_designs_with_thumbnails(hub: WebHub) -> None:
    client = hub.client("rita")
    page = client.get("/designs").get_data(as_text=True)
    assert f"/designs/{CUBE}/thumbnail.svg" in page and "3dbenchy" in page
    svg = client.get(f"/designs/{CUBE}/thumbnail.svg")
    assert svg.mimetype == "image/svg+xml"
    assert svg.get_data(as_text=True).count("<path") > 6  # at least three faces, two triangles
    assert client.get("/designs/no-such-design/thumbnail.svg").status_code == 404


def test_design_page_shows_facts_license_and_lineage(hub: WebHub) -> None:
    page = hub.client("rita").get("/designs/faceshield-frame-short").get_data(as_text=True)
    assert 'id="design-facts"' in page and "Watertight" in page
    assert 'id="lineage"' in page
    assert 'href="/designs/faceshield-frame"' in page  # its parent in the remix tree
    assert 'id="request-form"' in page


def test_request_form_submits_a_job_as_the_requester(hub: WebHub) -> None:
    client = hub.client("ravi")
    token = csrf_in(client.get(f"/designs/{CUBE}").get_data(as_text=True))
    form = {"quantity": "3", "material": "PLA", "quality": "draft", "csrf_token": token}
    answer = client.post(f"/designs/{CUBE}/request", data=form)
    assert answer.status_code == 303
    job_id = answer.headers["Location"].rsplit("/", 1)[-1]
    spec = hub.store.jobs.get(job_id).spec
    assert (spec.requester, spec.quantity, spec.material) == ("ravi", 3, "PLA")
    bad = client.post(f"/designs/{CUBE}/request", data={**form, "quantity": "0"})
    assert bad.status_code == 400 and "quantity must be 1..10000, got 0" in bad.get_data(
        as_text=True
    )
    no_token = client.post(f"/designs/{CUBE}/request", data={**form, "csrf_token": "x"})
    assert no_token.status_code == 403


def test_makers_cannot_request_copies(hub: WebHub) -> None:
    client = hub.client("ada")
    token = csrf_in(client.get(f"/designs/{CUBE}").get_data(as_text=True))
    form = {"quantity": "1", "material": "PLA", "quality": "draft", "csrf_token": token}
    assert client.post(f"/designs/{CUBE}/request", data=form).status_code == 403


def test_job_page_shows_each_part_and_its_maker(hub: WebHub, job: tuple[str, list[str]]) -> None:
    job_id, tasks = job
    page = hub.client("rita").get(f"/jobs/{job_id}").get_data(as_text=True)
    assert f'data-task="{tasks[0]}"' in page and f'data-task="{tasks[1]}"' in page
    assert f'data-live="jobs.{job_id}.tasks.{tasks[0]}.maker">ada<' in page
    assert "1/2 done" in page


def test_another_requesters_job_is_403(hub: WebHub, job: tuple[str, list[str]]) -> None:
    job_id, _ = job
    answer = hub.client("ravi").get(f"/jobs/{job_id}")
    assert answer.status_code == 403
    assert 'id="error-code">403<' in answer.get_data(as_text=True)
    assert hub.client("olga").get(f"/jobs/{job_id}").status_code == 200
    assert job_id not in hub.client("ravi").get("/jobs").get_data(as_text=True)


def test_maker_sees_own_machines_and_offers_only(hub: WebHub, job: tuple[str, list[str]]) -> None:
    _, tasks = job
    bruno = hub.client("bruno").get("/maker").get_data(as_text=True)
    assert 'data-machine="bruno/ender3-1"' in bruno and "ada/mk3s-1" not in bruno
    assert f'data-accept="{tasks[1]}"' in bruno
    ada = hub.client("ada").get("/maker").get_data(as_text=True)
    assert 'id="my-grams">7.5 g<' in ada and f'data-accept="{tasks[1]}"' not in ada
    client = hub.client("ada")
    token = csrf_in(ada)
    answer = client.post(f"/maker/offers/{tasks[1]}/accept", data={"csrf_token": token})
    assert answer.status_code == 403  # bruno's machine, not ada's


def test_task_page_shows_layers_analysis_and_safety(
    hub: WebHub, job: tuple[str, list[str]]
) -> None:
    _, tasks = job
    client = hub.client("rita")
    page = client.get(f"/tasks/{tasks[0]}").get_data(as_text=True)
    assert 'id="layer-slider"' in page and 'id="analysis"' in page
    assert "Passes the safety check" in page
    layers = int(re.search(r'id="layer-slider" min="0" max="(\d+)"', page).group(1)) + 1  # type: ignore[union-attr]
    assert layers > 20  # a 20 mm cube at 0.3 mm
    svg = client.get(f"/tasks/{tasks[0]}/layer/3.svg").get_data(as_text=True)
    assert 'data-layer="3"' in svg and 'class="work"' in svg
    assert client.get(f"/tasks/{tasks[0]}/layer/{layers}.svg").status_code == 404
    assert hub.client("ravi").get(f"/tasks/{tasks[0]}").status_code == 403
    assert hub.client("ada").get(f"/tasks/{tasks[0]}").status_code == 200  # made on her machine


def test_events_stream_snapshots_filtered_per_user(hub: WebHub, job: tuple[str, list[str]]) -> None:
    job_id, tasks = job
    answer = hub.client("ada").get(f"/events?job={job_id}&view=overview", buffered=False)
    assert answer.mimetype == "text/event-stream"
    chunks = answer.response  # type: ignore[attr-defined]
    data = ""
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("data: "):
            data = text[len("data: ") :]
            break
    answer.close()
    snapshot = json.loads(data)
    assert set(snapshot["machines"]) == {"ada/mk3s-1"}
    assert "charts" not in snapshot and "jobs" not in snapshot  # not an operator, not her job
    assert snapshot["counts"][TaskState.DONE.value] >= 1
    olga = hub.client("olga").get(f"/events?job={job_id}&view=overview", buffered=False)
    for chunk in olga.response:  # type: ignore[attr-defined]
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("data: "):
            full = json.loads(text[len("data: ") :])
            break
    olga.close()
    assert full["jobs"][job_id]["tasks"][tasks[0]]["state"] == "done"
    assert "<svg" in full["charts"]["production"] and "<svg" in full["charts"]["wall"]


def test_static_files_are_served(hub: WebHub, tmp_path: Path) -> None:
    client = hub.client()
    assert "EventSource" in client.get("/assets/live.js").get_data(as_text=True)
    assert client.get("/assets/fabnet.css").status_code == 200


def test_maker_registers_a_machine_and_sees_its_agent_config(hub: WebHub) -> None:
    client = hub.client("bruno")
    token = csrf_in(client.get("/maker").get_data(as_text=True))
    form = {
        "maker": "bruno",
        "machine": "mini-7",
        "profile": "prusa_mini",
        "driver": "sim",
        "material": "PETG",
        "csrf_token": token,
    }
    answer = client.post("/maker/machines", data=form)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 201, page
    assert 'id="registered-id">bruno/mini-7<' in page
    assert "[agent]" in page and "username = &#34;bruno&#34;" in page
    assert hub.store.catalog.get_machine("bruno/mini-7").profile == "prusa_mini"
    bad = client.post("/maker/machines", data={**form, "machine": "x2", "profile": "nope"})
    assert bad.status_code == 400 and "profile must be one of" in bad.get_data(as_text=True)
    theirs = client.post("/maker/machines", data={**form, "maker": "ada", "machine": "m9"})
    assert theirs.status_code == 403
