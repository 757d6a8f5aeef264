"""The dashboard's session key is the database's (issue 9): every api process behind one load
balancer signs and reads the same cookies, so a user logged in through one is logged in on the
other; a key file a hub kept before is adopted, and processes starting together agree."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, session

from fabnet.store import Store
from fabnet.store.hub_secrets import HubSecrets
from fabnet.web.auth import (
    SECRET_KEY_FILE,
    SESSION_KEY_SECRET,
    User,
    current_user,
    init_auth,
    login_user,
)

TOKEN = "fab_" + "b" * 40
PASSWORD = "a long enough password"


@pytest.fixture
def stores(pg_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one PostgreSQL database, as two api processes hold."""
    first, second = Store(pg_url), Store(pg_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def api_app(store: Store, data_dir: Path) -> Flask:
    """An app with fabnet's auth, a route that logs ``ada`` in and one that says who asks."""
    app = Flask(f"api-{data_dir.name}")
    app.config["TESTING"] = True
    init_auth(app, store.accounts, TOKEN, data_dir, db=store.db)

    @app.post("/test-login")
    def test_login() -> str:
        account = store.accounts.check_password("ada", PASSWORD)
        assert account is not None
        login_user(User.from_account(account))
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        user = current_user()
        return user.name if user else "-"

    return app


def test_a_user_logged_in_through_one_api_process_is_logged_in_on_the_other(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    now = datetime.now(UTC)
    stores[0].accounts.add_user("ada", PASSWORD, ["requester"], now)
    first, second = api_app(stores[0], tmp_path / "one"), api_app(stores[1], tmp_path / "two")
    assert first.secret_key == second.secret_key
    assert not (tmp_path / "one" / SECRET_KEY_FILE).exists()  # nothing per process on disk

    browser = first.test_client()
    assert browser.post("/test-login").status_code == 200
    cookie = browser.get_cookie("session")
    assert cookie is not None
    other = second.test_client()
    assert other.get("/whoami").text == "-"
    other.set_cookie("session", cookie.value)
    assert other.get("/whoami").text == "ada"  # the other process reads the same cookie


def test_a_key_file_from_before_is_adopted_and_wins_over_later_ones(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    old_key = secrets.token_bytes(32)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / SECRET_KEY_FILE).write_bytes(old_key)
    assert api_app(stores[0], tmp_path / "one").secret_key == old_key
    # another process with a key file of its own: the database's key stands
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / SECRET_KEY_FILE).write_bytes(secrets.token_bytes(32))
    assert api_app(stores[1], tmp_path / "two").secret_key == old_key
    assert HubSecrets(stores[1].db).get(SESSION_KEY_SECRET) == old_key.hex()


def test_processes_asking_at_once_get_one_key(pg_url: str) -> None:
    stores = [Store(pg_url) for _ in range(3)]  # the server is shared
    keys: list[str] = []
    start = threading.Barrier(len(stores))

    def ask(store: Store) -> None:
        start.wait()
        keys.append(HubSecrets(store.db).get_or_make("race", lambda: secrets.token_hex(32)))

    threads = [threading.Thread(target=ask, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for store in stores:
            store.close()
    assert len(keys) == len(stores) and len(set(keys)) == 1, keys


def test_an_app_built_while_the_database_is_down_reads_the_key_once_it_answers(
    tmp_path: Path,
) -> None:
    folder, away = tmp_path / "db", tmp_path / "away"
    store = Store(f"sqlite:///{folder / 'hub.db'}", create_tables=False)  # makes the folder
    folder.rename(away)  # SQLite cannot open a file in a missing folder: the database is down
    try:
        app = Flask("api-late")
        init_auth(app, store.accounts, TOKEN, None, db=store.db)

        @app.get("/visit")
        def visit() -> str:
            try:
                session["n"] = session.get("n", 0) + 1
            except RuntimeError:  # Flask's null session: there is no key to sign a cookie
                return "no session"
            return str(session["n"])

        browser = app.test_client()
        assert app.secret_key is None
        assert browser.get("/visit").text == "no session"  # answered all the same
        assert browser.get("/visit").text == "no session"
        away.rename(folder)
        assert browser.get("/visit").text == "1"  # the key is read: this answer sets a cookie
        assert browser.get("/visit").text == "2"
        stored = HubSecrets(store.db).get(SESSION_KEY_SECRET)
        assert stored is not None and app.secret_key == bytes.fromhex(stored)
    finally:
        store.close()
