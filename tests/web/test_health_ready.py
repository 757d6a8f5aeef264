"""``/readyz``: 200 only while the database answers and (in a process with a bus client) the
broker is connected; else 503 naming what is down. ``/healthz`` stays the liveness check."""

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

TOKEN = "fab_" + "6" * 40


def app_over(store: Store, tmp_path: Path, connected: bool | None) -> Flask:
    service = HubService(store, DesignCatalog(store, tmp_path / "library"), lambda j, r: None)
    settings = WebSettings(
        data_dir=tmp_path / "hub",
        broker_connected=None if connected is None else (lambda: connected),
    )
    return create_app(service, ArtifactStore(tmp_path / "artifacts"), TOKEN, settings=settings)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_ready_while_the_database_answers_and_the_broker_is_connected(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    try:
        answer = app_over(store, tmp_path, True).test_client().get("/readyz")
        assert answer.status_code == 200
        assert answer.get_json() == {
            "status": "ready", "down": [], "database": "ok", "broker": "connected"
        }  # fmt: skip
        # a process without a bus client (an api role, a tool) is ready on the database alone
        answer = app_over(store, tmp_path, None).test_client().get("/readyz")
        assert answer.status_code == 200
        assert answer.get_json() == {"status": "ready", "down": [], "database": "ok"}
    finally:
        store.close()


def test_not_ready_while_the_broker_is_disconnected(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    try:
        app = app_over(store, tmp_path, False)
        answer = app.test_client().get("/readyz")
        assert answer.status_code == 503
        assert answer.get_json()["down"] == ["broker"]
        assert app.test_client().get("/healthz").status_code == 200  # alive all the same
    finally:
        store.close()


def test_not_ready_when_the_database_does_not_answer(tmp_path: Path) -> None:
    url = f"postgresql+psycopg2://fabnet:secret@127.0.0.1:{closed_port()}/fabnet"
    store = Store(url, create_tables=False)
    try:
        answer = app_over(store, tmp_path, False).test_client().get("/readyz")
    finally:
        store.close()
    assert answer.status_code == 503
    assert answer.get_json() == {
        "status": "unavailable",
        "down": ["database", "broker"],
        "database": "unreachable",
        "broker": "disconnected",
    }
