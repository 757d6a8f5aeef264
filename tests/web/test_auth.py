"""Log-in, sessions, CSRF, tokens (hashed, revocable) and the auth contract's role checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import PASSWORD, ApiHub, api_hub, json_of
from flask.testing import FlaskClient
from sqlalchemy import text

from fabnet.store.accounts import token_digest
from fabnet.store.hub_secrets import HubSecrets
from fabnet.web.auth import SECRET_KEY_FILE, SESSION_KEY_SECRET, User


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def _csrf(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r"name=[\"']?csrf_token[\"']? value=[\"']([^\"']+)", page)
    assert found, page
    return found.group(1)


def _login(hub: ApiHub, name: str, password: str = PASSWORD) -> tuple[FlaskClient, int]:
    client = hub.app.test_client()
    token = _csrf(client)
    answer = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/api/v1/me"},
    )
    return client, answer.status_code


def test_login_session_and_logout(hub: ApiHub) -> None:
    client, status = _login(hub, "rita")
    assert status == 302
    assert json_of(client.get("/api/v1/me"))["name"] == "rita"
    _, status = _login(hub, "rita", "wrong password")
    assert status == 401
    _, status = _login(hub, "nobody")
    assert status == 401
    with client.session_transaction() as session:
        token = session["csrf"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_a_copied_session_cookie_dies_with_log_out_and_a_new_password(hub: ApiHub) -> None:
    """The cookie names a server-side session: log-out ends it for every copy of the cookie,
    and a password change ends all of the user's sessions; the cookie is SameSite=Lax."""
    client, _ = _login(hub, "rita")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.same_site == "Lax" and cookie.http_only
    thief = hub.app.test_client()
    thief.set_cookie("session", cookie.value)
    assert json_of(thief.get("/api/v1/me"))["name"] == "rita"
    with client.session_transaction() as session:
        token = session["csrf"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/api/v1/me").status_code == 401
    again, _ = _login(hub, "rita")
    assert again.get("/api/v1/me").status_code == 200
    hub.store.accounts.set_password("rita", PASSWORD + "-new")
    assert again.get("/api/v1/me").status_code == 401


def test_login_refuses_missing_csrf_and_open_redirects(hub: ApiHub) -> None:
    client = hub.app.test_client()
    client.get("/login")
    answer = client.post("/login", data={"name": "rita", "password": PASSWORD})
    assert answer.status_code == 403
    token = _csrf(client)
    answer = client.post(
        "/login",
        data={
            "name": "rita",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/",
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_session_writes_need_the_csrf_token(hub: ApiHub) -> None:
    client, _ = _login(hub, "rita")
    body = {"design": "cube-xyz-20mm", "quantity": 1, "material": "PLA"}
    refused = client.post("/api/v1/jobs", json=body)
    assert refused.status_code == 403 and "CSRF" in json_of(refused)["message"]
    with client.session_transaction() as session:
        token = session["csrf"]
    wrong = client.post("/api/v1/jobs", json=body, headers={"X-CSRF-Token": "x" + token})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/jobs", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201
    # bearer-token calls carry no cookie and need no CSRF token
    assert hub.client("rita").post("/api/v1/jobs", json=body).status_code == 201


def test_tokens_are_hashed_shown_once_and_revocable(hub: ApiHub) -> None:
    rita = hub.client("rita")
    made = json_of(rita.post("/api/v1/tokens", json={"name": "script"}))
    raw = made["token"]
    assert raw.startswith("fn_") and len(raw) > 40
    with hub.store.db.read() as s:
        stored = [tuple(r) for r in s.execute(text("SELECT * FROM api_tokens"))]
    assert not any(raw in str(v) for row in stored for v in row)
    assert any(token_digest(raw) in row for row in stored)
    listed = json_of(rita.get("/api/v1/tokens"))
    assert "token" not in listed[0] and {t["name"] for t in listed} == {"tests", "script"}
    script = hub.app.test_client()
    script.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    assert json_of(script.get("/api/v1/me"))["name"] == "rita"
    assert hub.client("ravi").delete(f"/api/v1/tokens/{made['id']}").status_code == 404
    revoked = json_of(rita.delete(f"/api/v1/tokens/{made['id']}"))
    assert revoked["revoked_at"] is not None
    assert script.get("/api/v1/me").status_code == 401
    assert hub.client("boot").get("/api/v1/tokens").status_code == 409


def test_pages_redirect_to_login_and_secret_key_persists(hub: ApiHub) -> None:
    # the key is the database's, shared by every hub process (issue 9), not a file's
    assert not (hub.root / "hub" / SECRET_KEY_FILE).exists()
    stored = HubSecrets(hub.store.db).get(SESSION_KEY_SECRET)
    assert stored is not None and hub.app.secret_key == bytes.fromhex(stored)


def test_user_contract() -> None:
    ada = User("1", "ada", frozenset({"maker", "requester"}), frozenset({"ada"}))
    olga = User("2", "olga", frozenset({"operator"}), frozenset())
    assert ada.is_maker and ada.is_requester and not ada.is_operator
    assert ada.can_see_job("ada") and not ada.can_see_job("rita")
    assert ada.can_manage_machine("ada/mk3s") and not ada.can_manage_machine("bruno/mk3s")
    assert not ada.can_manage_machine("ada")
    assert olga.can_see_job("anyone") and olga.can_manage_machine("bruno/x")
