"""Who is asking: users from the session or a bearer token, role checks, CSRF, log-in pages.

The contract the dashboard codes against: ``User``, ``current_user``, ``require_login``,
``csrf_token`` (also a Jinja global), ``login_user`` / ``logout_user`` and ``auth_pages``.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from jinja2 import TemplateNotFound
from markupsafe import escape
from werkzeug.wrappers.response import Response as BaseResponse

from fabnet.store.accounts import Accounts, Role
from fabnet.store.database import Database
from fabnet.web.session_key import SECRET_KEY_FILE, SESSION_KEY_SECRET, install_session_key
from fabnet.web.users import (
    BOOTSTRAP_OPERATOR,
    BOOTSTRAP_USER_ID,
    MAKER,
    OPERATOR,
    REQUESTER,
    TokenCache,
    User,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_USER = "user_id"
SESSION_CSRF = "csrf"
SESSION_ID = "sid"  # the server-side session (fabnet.store.web_sessions)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXTENSION = "fabnet_auth"


@dataclass(frozen=True)
class AuthSettings:
    """What the auth layer needs: the accounts and the hub config's bootstrap token."""

    accounts: Accounts
    bootstrap_token: str
    tokens: TokenCache = field(default_factory=TokenCache)


def forget_tokens() -> None:
    """Drop cached token look-ups (after a token is revoked)."""
    _settings().tokens.clear()


def init_auth(
    app: Flask,
    accounts: Accounts,
    bootstrap_token: str,
    data_dir: Path | None,
    *,
    db: Database | None = None,
) -> None:
    """Install the session key (``fabnet.web.session_key``: the database's with ``db``, else
    ``data_dir``'s key file, else a random one), the CSRF check, the Jinja globals and the
    log-in pages on ``app``."""
    install_session_key(app, data_dir, db)
    # assigned, not setdefault: Flask's defaults already hold these keys (SameSite None)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.extensions[EXTENSION] = AuthSettings(accounts, bootstrap_token)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user
    app.before_request(_check_csrf)
    app.register_blueprint(auth_pages)


def _settings() -> AuthSettings:
    settings = current_app.extensions[EXTENSION]
    assert isinstance(settings, AuthSettings)
    return settings


def bearer_token() -> str | None:
    """The raw token of ``Authorization: Bearer <token>``, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_user() -> User | None:
    """The user behind this request (bearer token first, then the session); cached on ``g``.

    A wrong bearer token gives None even when a session cookie is present.
    """
    if "fabnet_user" in g:
        cached: User | None = g.fabnet_user
        return cached
    user = _find_user()
    g.fabnet_user = user
    return user


def _find_user() -> User | None:
    settings = _settings()
    token = bearer_token()
    if token is not None:
        g.fabnet_token_auth = True
        if settings.bootstrap_token and hmac.compare_digest(
            token.encode(), settings.bootstrap_token.encode()
        ):
            return BOOTSTRAP_OPERATOR
        account = settings.tokens.lookup(settings.accounts, token)
        return User.from_account(account) if account else None
    raw = session.get(SESSION_ID)
    if not isinstance(raw, str):
        return None
    user_id = settings.accounts.sessions.user_id(raw, datetime.now(UTC))
    account = settings.accounts.find_user(user_id) if user_id else None
    return User.from_account(account) if account else None


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def require_login(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R | BaseResponse]]:
    """Decorate a view: no user → 401 JSON (``/api/...``) or redirect to ``/login?next=``;
    a user with none of ``roles`` (when given) → 403. Operators pass every role check."""
    unknown = set(roles) - {r.value for r in Role}
    if unknown:
        raise ValueError(f"require_login: unknown roles {sorted(unknown)}")

    def decorate(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
            user = current_user()
            if user is None:
                if is_api_request() or g.get("fabnet_token_auth"):
                    abort(401, description="log in or send Authorization: Bearer <token>")
                return redirect(url_for("auth_pages.login", next=request.full_path.rstrip("?")))
            if roles and not user.is_operator and not user.roles & set(roles):
                abort(403, description=f"needs role {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def csrf_token() -> str:
    """This session's CSRF token (created on first use); put it in every form."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def _check_csrf() -> None:
    """Refuse unsafe requests that ride on the session cookie without the session's token."""
    if request.method not in UNSAFE_METHODS or bearer_token() is not None:
        return
    if SESSION_USER not in session and request.endpoint != "auth_pages.login":
        return  # anonymous: the view answers 401 / redirects to log in
    expected = session.get(SESSION_CSRF)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, description="CSRF token missing or wrong (form field csrf_token)")


def login_user(user: User) -> None:
    """Start a session for ``user`` (a fresh session: new CSRF token, a new server-side id)."""
    session.clear()
    session[SESSION_ID] = _settings().accounts.sessions.start(user.user_id, datetime.now(UTC))
    session[SESSION_USER] = user.user_id
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    session.permanent = True
    g.fabnet_user = user


def logout_user() -> None:
    """End the session, on the server too: a copy of the cookie no longer logs in."""
    raw = session.get(SESSION_ID)
    if isinstance(raw, str):
        _settings().accounts.sessions.end(raw, datetime.now(UTC))
    session.clear()
    g.fabnet_user = None


auth_pages = Blueprint("auth_pages", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths are followed after log-in (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@auth_pages.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str | tuple[str, int]:
    """GET: the form. POST ``name``, ``password``, ``csrf_token`` (``next`` optional)."""
    next_url = _safe_next(request.values.get("next"))
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")
        account = _settings().accounts.check_password(name, request.form.get("password", ""))
        if account is not None:
            login_user(User.from_account(account))
            return redirect(next_url)
        log.info("failed log-in for %r from %s", name, request.remote_addr)
        error = "wrong name or password"
    page = _login_page(next_url, error)
    return (page, 401) if error else page


@auth_pages.post("/logout")
def logout() -> BaseResponse:
    logout_user()
    return redirect(url_for("auth_pages.login"))


def _login_page(next_url: str, error: str | None) -> str:
    try:
        return render_template("login.html", next=next_url, error=error)
    except TemplateNotFound:
        message = f"<p class=error>{escape(error)}</p>" if error else ""
        return (
            "<!doctype html><title>fabnet: log in</title><h1>Log in</h1>"
            f"{message}<form method=post action='/login'>"
            f"<input type=hidden name=csrf_token value='{escape(csrf_token())}'>"
            f"<input type=hidden name=next value='{escape(next_url)}'>"
            "<label>Name <input name=name autocomplete=username></label>"
            "<label>Password <input type=password name=password "
            "autocomplete=current-password></label>"
            "<button type=submit>Log in</button></form>"
        )


__all__ = [
    "BOOTSTRAP_OPERATOR",
    "BOOTSTRAP_USER_ID",
    "MAKER",
    "OPERATOR",
    "REQUESTER",
    "SECRET_KEY_FILE",
    "SESSION_KEY_SECRET",
    "TokenCache",
    "User",
    "current_user",
    "require_login",
    "csrf_token",
    "login_user",
    "logout_user",
    "auth_pages",
    "init_auth",
]
