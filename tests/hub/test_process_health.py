"""``/healthz`` answers without a log-in: 200 while the database answers, 503 when it does not,
and says whether the hub's broker client is connected."""

from __future__ import annotations

import socket
from pathlib import Path

from flask import Flask

from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.service import HubService
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.app import WebSettings

TOKEN = "fab_" + "5" * 40


def app_over(store: Store, tmp_path: Path, connected: bool | None) -> Flask:
    service = HubService(store, DesignCatalog(store, tmp_path / "library"), lambda j, r: None)
    settings = WebSettings(
        data_dir=tmp_path / "hub",
        broker_connected=None if connected is None else (lambda: connected),
    )
    return create_app(service, ArtifactStore(tmp_path / "artifacts"), TOKEN, settings=settings)


def test_healthz_is_ok_while_the_database_answers(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    try:
        for connected, broker in ((True, "connected"), (False, "disconnected")):
            answer = app_over(store, tmp_path, connected).test_client().get("/healthz")
            assert answer.status_code == 200
            assert answer.get_json() == {"status": "ok", "database": "ok", "broker": broker}
        answer = app_over(store, tmp_path, None).test_client().get("/healthz")
        assert answer.get_json()["broker"] == "disconnected"  # an app with no broker client
    finally:
        store.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    url = f"postgresql+psycopg2://fabnet:secret@127.0.0.1:{closed_port()}/fabnet"
    store = Store(url, create_tables=False)
    try:
        answer = app_over(store, tmp_path, True).test_client().get("/healthz")
    finally:
        store.close()
    assert answer.status_code == 503
    assert answer.get_json() == {
        "status": "unavailable",
        "database": "unreachable",
        "broker": "connected",
    }
