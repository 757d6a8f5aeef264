"""Two hubs, each its own Flask app and SQLite database, served on loopback HTTP: operators add
each other as peers, a signed hello works both ways and confirms the link; forged requests
(wrong key, altered body or path, another hub's name, unknown hub), a replayed one, one from a
paused or removed peer and one outside the clock skew are refused with a message naming the
problem, and change nothing (rows counted before and after)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from fabnet.config import FederationConfig
from fabnet.federation import signing as sg
from fabnet.federation.cli import peers as peers_cli
from fabnet.federation.keys import HubKey
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.service import HubService
from fabnet.store import Store
from fabnet.store.peers import PeerNonces, Peers
from fabnet.web import create_app
from fabnet.web.app import WebSettings

TOKEN = "bootstrap-token-for-federation-tests"
SKEW_S = 60.0
HELLO = "/federation/v1/hello"


@dataclass
class Hub:
    name: str
    app: Flask
    store: Store
    url: str
    key: HubKey

    def operator(self) -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        return client

    def add_peer(self, other: Hub, **terms: Any) -> dict[str, Any]:
        body = {"name": other.name, "url": other.url, "key": other.key.public.text, **terms}
        answer = self.operator().post("/api/v1/peers", json=body)
        assert answer.status_code == 201, answer.get_data(as_text=True)
        return dict(answer.get_json())

    def state(self) -> tuple[Any, ...]:
        """Everything a peer request could change: the peer rows and the nonces kept."""
        peers = Peers(self.store.db)
        rows = tuple(peers.list(include_removed=True))
        return rows, PeerNonces(self.store.db).count()


@contextmanager
def hub(tmp_path: Path, name: str, *, federated: bool = True) -> Iterator[Hub]:
    folder = tmp_path / name
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'fabnet.db'}")
    # its own library under tmp: a peer's design it takes in is imported there, never into
    # the checkout's designs/ (the seeded library stays behind it, read-only)
    service = HubService(store, DesignCatalog.for_hub(store, folder), lambda job, why: None)
    key_file = folder / "federation" / "hub_ed25519.pem"
    federation = FederationConfig(name, key_file, SKEW_S) if federated else None
    settings = WebSettings(data_dir=folder, federation=federation)
    app = create_app(service, ArtifactStore(folder / "artifacts"), TOKEN, settings=settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        yield Hub(
            name,
            app,
            store,
            url,
            HubKey.load_or_create(key_file) if federated else HubKey.generate(),
        )
    finally:
        server.shutdown()
        store.close()


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[Hub, Hub]]:
    with ExitStack() as stack:
        yield (
            stack.enter_context(hub(tmp_path, "alpha")),
            stack.enter_context(hub(tmp_path, "beta")),
        )


def signed(key: HubKey, as_hub: str, payload: dict[str, Any], *, path: str = HELLO,
           created: datetime | None = None, nonce: str | None = None) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    body = json.dumps(payload).encode()
    when = int((created or datetime.now(UTC)).timestamp())
    headers = sg.sign_request(key, as_hub, "POST", path, "", body, when, nonce or sg.new_nonce())
    return body, {**headers, "Content-Type": "application/json"}


def post(target: Hub, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    answer = target.app.test_client().post(HELLO, data=body, headers=headers)
    return answer.status_code, str((answer.get_json() or {}).get("message", ""))


def hello_from(alpha: Hub) -> dict[str, Any]:
    return {"hub": alpha.name, "peer": "beta", "key": alpha.key.public.text}


def test_hello_works_both_ways_once_each_side_added_the_other(hubs: tuple[Hub, Hub]) -> None:
    alpha, beta = hubs
    alpha.add_peer(beta, kinds=["cnc"], materials=["pla"], max_in_flight=3, charges_credits=False)
    early = alpha.operator().post("/api/v1/peers/beta/hello")  # beta does not know alpha yet
    assert early.status_code == 502
    assert "unknown peer 'alpha'" in early.get_json()["message"]
    assert not Peers(alpha.store.db).get("beta").confirmed  # type: ignore[union-attr]
    beta.add_peer(alpha)
    there = alpha.operator().post("/api/v1/peers/beta/hello")
    assert there.status_code == 200, there.get_data(as_text=True)
    assert there.get_json()["hello_out_at"] and not there.get_json()["confirmed"]
    back = beta.operator().post("/api/v1/peers/alpha/hello")
    assert back.status_code == 200, back.get_data(as_text=True)
    assert back.get_json()["confirmed"]  # beta heard alpha's hello and alpha answered beta's
    listed = alpha.operator().get("/api/v1/peers").get_json()
    assert [(p["name"], p["confirmed"], p["kinds"], p["materials"], p["max_in_flight"],
             p["charges_credits"]) for p in listed] == [("beta", True, ["cnc"], ["PLA"], 3, False)]  # fmt: skip


def test_forged_requests_are_refused_and_change_nothing(hubs: tuple[Hub, Hub]) -> None:
    alpha, beta = hubs
    beta.add_peer(alpha)
    gamma = HubKey.generate()  # a third hub beta does know, pretending to be alpha below
    beta.operator().post("/api/v1/peers", json={"name": "gamma", "url": "http://127.0.0.1:9",
                                                "key": gamma.public.text})  # fmt: skip
    before = beta.state()
    body, headers = signed(gamma, "alpha", hello_from(alpha))
    assert post(beta, body, headers) == (401, f"key {gamma.key_id} is not alpha's key "
                                              f"({alpha.key.key_id})")  # fmt: skip
    forged_id = headers[sg.INPUT_HEADER].replace(gamma.key_id, alpha.key.key_id)
    status, message = post(beta, body, {**headers, sg.INPUT_HEADER: forged_id})
    assert (status, message.split(":")[0]) == (401, "bad signature")
    body, headers = signed(alpha.key, "alpha", hello_from(alpha))
    altered = body.replace(b'"beta"', b'"BETA"')
    assert post(beta, altered, headers) == (401, "the body does not match its Content-Digest "
                                                 "(altered?)")  # fmt: skip
    redigested = {**headers, sg.DIGEST_HEADER: sg.content_digest(altered)}
    assert post(beta, altered, redigested)[0] == 401
    as_gamma = {**headers, sg.HUB_HEADER: "gamma"}  # alpha's signature presented as gamma's
    assert post(beta, body, as_gamma)[0] == 401
    body_p, headers_p = signed(alpha.key, "alpha", hello_from(alpha), path="/federation/v1/other")
    assert post(beta, body_p, headers_p)[1].startswith("bad signature")
    stranger = HubKey.generate()
    body_s, headers_s = signed(stranger, "delta", hello_from(alpha))
    assert post(beta, body_s, headers_s) == (401, "unknown peer 'delta': this hub has not added it")
    unsigned = beta.app.test_client().post(HELLO, json=hello_from(alpha))
    assert unsigned.status_code == 401 and "Fabnet-Hub is missing" in unsigned.get_json()["message"]
    assert beta.state() == before
    assert post(beta, body, headers)[0] == 200  # the genuine one still passes
    assert beta.state() != before


def test_a_replayed_request_is_refused_and_changes_nothing(hubs: tuple[Hub, Hub]) -> None:
    alpha, beta = hubs
    beta.add_peer(alpha)
    body, headers = signed(alpha.key, "alpha", hello_from(alpha))
    assert post(beta, body, headers)[0] == 200
    after_first = beta.state()
    status, message = post(beta, body, headers)
    assert status == 401 and message.startswith("replayed request: nonce")
    assert beta.state() == after_first


def test_paused_and_removed_peers_are_refused(hubs: tuple[Hub, Hub]) -> None:
    alpha, beta = hubs
    beta.add_peer(alpha)
    assert beta.operator().post("/api/v1/peers/alpha/pause").get_json()["state"] == "paused"
    before = beta.state()
    body, headers = signed(alpha.key, "alpha", hello_from(alpha))
    assert post(beta, body, headers) == (403, "peering with alpha is paused on this hub")
    assert beta.state() == before
    assert beta.operator().post("/api/v1/peers/alpha/resume").get_json()["state"] == "active"
    assert post(beta, body, headers)[0] == 200  # the same request, once resumed
    assert beta.operator().delete("/api/v1/peers/alpha").get_json()["state"] == "removed"
    before = beta.state()
    body, headers = signed(alpha.key, "alpha", hello_from(alpha))
    assert post(beta, body, headers)[1].startswith("unknown peer 'alpha'")
    assert beta.state() == before
    assert beta.operator().get("/api/v1/peers").get_json() == []
    assert beta.operator().post("/api/v1/peers/alpha/pause").status_code == 404


def test_clock_skew_is_refused(hubs: tuple[Hub, Hub]) -> None:
    alpha, beta = hubs
    beta.add_peer(alpha)
    before = beta.state()
    for offset_s in (-2 * SKEW_S, 2 * SKEW_S):
        when = datetime.now(UTC) + timedelta(seconds=offset_s)
        body, headers = signed(alpha.key, "alpha", hello_from(alpha), created=when)
        status, message = post(beta, body, headers)
        assert status == 401 and "from this hub's clock (allowed ±60 s)" in message
    assert beta.state() == before


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'n.db'}"


def test_a_nonce_is_taken_once_by_racing_processes(store_url: str) -> None:
    stores = [Store(store_url) for _ in range(2)]  # two hub processes sharing the database
    assert [PeerNonces(store.db).count() for store in stores] == [0, 0]  # tables made
    now = datetime.now(UTC)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def take(store: Store) -> None:
        barrier.wait()
        results.append(PeerNonces(store.db).record("alpha", "same-nonce-000000", now, now))

    threads = [threading.Thread(target=take, args=(stores[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    for store in stores:
        store.close()


def test_nonces_expire_after_the_skew_window(store_url: str) -> None:
    store = Store(store_url)
    nonces = PeerNonces(store.db)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    window = timedelta(seconds=SKEW_S)
    for i in range(5):
        assert nonces.record("alpha", f"nonce-{i:012d}", t0 + window, t0)
    assert not nonces.record("alpha", "nonce-000000000000", t0 + window, t0)
    assert nonces.count() == 5
    later = t0 + 2 * window
    assert nonces.record("alpha", "nonce-later-000000", later + window, later)
    assert nonces.count() == 1  # the old window's nonces are gone
    store.close()


def test_operator_input_is_checked(hubs: tuple[Hub, Hub]) -> None:
    alpha, beta = hubs
    op = alpha.operator()
    good = {"name": "beta", "url": beta.url, "key": beta.key.public.text}
    cases = [({"key": "AAAA"}, "key must be an Ed25519 public key"),
             ({"url": "ftp://x"}, "url must look like"),
             ({"kinds": ["laser"]}, "kinds"),
             ({"materials": ["unobtainium"]}, "materials"),
             ({"name": "bad name"}, "name must be"),
             ({"name": "alpha"}, "this hub's own name")]  # fmt: skip
    for change, words in cases:
        answer = op.post("/api/v1/peers", json={**good, **change})
        assert answer.status_code == 400 and words in answer.get_json()["message"], change
    assert op.post("/api/v1/peers", json=good).status_code == 201
    assert op.post("/api/v1/peers", json=good).status_code == 409
    requester = alpha.app.test_client()
    assert requester.get("/api/v1/peers").status_code == 401
    assert op.get("/api/v1/federation/key").get_json()["key"] == alpha.key.public.text


def test_peers_command_line(hubs: tuple[Hub, Hub], tmp_path: Path) -> None:
    alpha, beta = hubs
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\nid = "alpha"\ndata_dir = "{tmp_path / "alpha"}"\n'
                      f'[http]\napi_token = "{TOKEN}"\n[broker]\npassword = "x-broker-secret-1"\n')  # fmt: skip
    run = CliRunner().invoke
    key = run(peers_cli, ["key", "--config", str(config)])
    assert key.exit_code == 0, key.output
    assert f"key    {alpha.key.public.text}" in key.output and "name   alpha" in key.output
    auth = ["--hub", alpha.url, "--token", TOKEN]
    added = run(peers_cli, ["add", "beta", "--url", beta.url, "--key", beta.key.public.text,
                            "--kinds", "cnc", "--charges-credits", "no", *auth])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "kinds=cnc" in added.output and "charges_credits=no" in added.output
    for verb, state in (("pause", "paused"), ("resume", "active"), ("remove", "removed")):
        result = run(peers_cli, [verb, "beta", *auth])
        assert result.exit_code == 0 and f"beta {' ' * 16}{state}" in result.output, result.output
    assert run(peers_cli, ["list", *auth]).output == "no peers\n"


def test_a_hub_without_federation_settings_says_so(tmp_path: Path) -> None:
    with hub(tmp_path, "alpha") as alpha, hub(tmp_path, "island", federated=False) as island:
        island.add_peer(alpha)  # the table can be kept; nothing can be signed or checked
        assert not (tmp_path / "island" / "federation").exists()
        body, headers = signed(alpha.key, "alpha", hello_from(alpha))
        assert post(island, body, headers) == (409, "federation is not configured on this hub "
                                                    "([federation] in hub.toml)")  # fmt: skip
        assert island.operator().get("/api/v1/federation/key").status_code == 409
        assert island.operator().post("/api/v1/peers/alpha/hello").status_code == 409
