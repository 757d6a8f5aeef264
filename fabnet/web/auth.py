"""Who is asking: users from the session or a bearer token, role checks, CSRF, log-in pages.

The contract the dashboard codes against: ``User``, ``current_user``, ``require_login``,
``csrf_token`` (also a Jinja global), ``login_user`` / ``logout_user`` and ``auth_pages``.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import threading
import time
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
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from jinja2 import TemplateNotFound
from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers.response import Response as BaseResponse

from fabnet.store.accounts import Account, Accounts, Role, token_digest
from fabnet.store.database import Database
from fabnet.store.hub_secrets import HubSecrets

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

OPERATOR = Role.OPERATOR.value
MAKER = Role.MAKER.value
REQUESTER = Role.REQUESTER.value
BOOTSTRAP_USER_ID = "bootstrap-operator"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_USER = "user_id"
SESSION_CSRF = "csrf"
SESSION_ID = "sid"  # the server-side session (fabnet.store.web_sessions)
SECRET_KEY_FILE = "web_secret_key"  # where hubs before issue 9 kept the session key
SESSION_KEY_SECRET = "web-session-key"  # its name in the database (fabnet.store.hub_secrets)
SESSION_KEY_BYTES = 32
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXTENSION = "fabnet_auth"
TOKEN_CACHE_S = 5.0
TOKEN_CACHE_SIZE = 10_000
MACHINE_ID_SEPARATOR = "/"


@dataclass(frozen=True)
class User:
    """A logged-in person (or script, through a token) and what they may do."""

    user_id: str
    name: str
    roles: frozenset[str]
    maker_ids: frozenset[str]

    @property
    def is_operator(self) -> bool:
        return OPERATOR in self.roles

    @property
    def is_maker(self) -> bool:
        return MAKER in self.roles

    @property
    def is_requester(self) -> bool:
        return REQUESTER in self.roles

    def can_see_job(self, requester: str) -> bool:
        """Whether this user may see a job whose ``requester`` field is ``requester``."""
        return self.is_operator or (self.is_requester and requester == self.name)

    def owns_maker(self, maker_id: str) -> bool:
        """Whether this user may act for the maker (agent) ``maker_id``."""
        return self.is_operator or (self.is_maker and maker_id in self.maker_ids)

    def can_manage_machine(self, machine_id: str) -> bool:
        """Whether this user may see and change hub machine ``<agent>/<machine>``."""
        agent, sep, _ = machine_id.partition(MACHINE_ID_SEPARATOR)
        return self.is_operator or (bool(sep) and self.owns_maker(agent))

    @classmethod
    def from_account(cls, account: Account) -> User:
        return cls(account.user_id, account.name, account.roles, account.maker_ids)


BOOTSTRAP_OPERATOR = User(BOOTSTRAP_USER_ID, "operator", frozenset({OPERATOR}), frozenset())


class TokenCache:
    """Bearer tokens looked up in the last ``ttl_s`` seconds (by sha256, never the raw token).

    A token revoked through this app is forgotten at once; one revoked elsewhere (the CLI,
    another hub process) stops working within ``ttl_s``.
    """

    def __init__(self, ttl_s: float = TOKEN_CACHE_S) -> None:
        self._ttl_s = ttl_s
        self._items: dict[str, tuple[float, Account | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, accounts: Accounts, raw: str) -> Account | None:
        key = token_digest(raw)
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        account = accounts.user_by_token(raw, datetime.now(UTC))
        with self._lock:
            if len(self._items) > TOKEN_CACHE_SIZE:
                self._items.clear()
            self._items[key] = (now, account)
        return account

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


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
    """Install the secret key, the CSRF check, the Jinja global and the log-in pages on ``app``.

    The session key signs the dashboard's cookies, so every hub process behind one load
    balancer must hold the same: with ``db`` it is the database's (``hub_secrets``, generated
    by whichever process asks first; a ``data_dir/web_secret_key`` written before issue 9 is
    adopted into the database, so logged-in users stay logged in). Without ``db`` it is read
    from ``data_dir/web_secret_key`` (created once, mode 0600); with neither, a random key
    lives as long as the app.
    """
    if db is None:
        app.secret_key = _secret_key(data_dir)
    else:
        try:
            app.secret_key = _shared_key(db, data_dir)
        except SQLAlchemyError as exc:  # the app still answers /healthz (503) meanwhile
            log.warning("session key not read, the database does not answer: %s", exc)
            app.session_interface = _LateKeySessions(lambda: _shared_key(db, data_dir))
    # assigned, not setdefault: Flask's defaults already hold these keys (SameSite None)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.extensions[EXTENSION] = AuthSettings(accounts, bootstrap_token)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user
    app.before_request(_check_csrf)
    app.register_blueprint(auth_pages)


class _LateKeySessions(SecureCookieSessionInterface):
    """Cookie sessions whose key is read from the database when it first answers; until then
    requests run without a session (anonymous), as in an app with no secret key."""

    def __init__(self, load: Callable[[], bytes]) -> None:
        self._load = load
        self._lock = threading.Lock()

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        with self._lock:
            if app.secret_key is None:
                try:
                    app.secret_key = self._load()
                except SQLAlchemyError as exc:
                    log.warning("session key not read, the database does not answer: %s", exc)
                    return None
        return super().get_signing_serializer(app)


def _shared_key(db: Database, data_dir: Path | None) -> bytes:
    """The session key every hub process on ``db`` shares."""
    legacy = Path(data_dir) / SECRET_KEY_FILE if data_dir is not None else None

    def make() -> str:
        key = _legacy_key(legacy)
        if key is not None:
            log.info("dashboard session key adopted from %s into the database", legacy)
            return key.hex()
        return secrets.token_hex(SESSION_KEY_BYTES)

    key = bytes.fromhex(HubSecrets(db).get_or_make(SESSION_KEY_SECRET, make))
    if legacy is not None and (old := _legacy_key(legacy)) is not None and old != key:
        log.warning("%s is not the database's session key and is not used", legacy)
    return key


def _legacy_key(path: Path | None) -> bytes | None:
    """The key a hub before issue 9 kept in its data folder, if there is one (>= 32 bytes)."""
    if path is None:
        return None
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return None
    return key if len(key) >= SESSION_KEY_BYTES else None


def _secret_key(data_dir: Path | None) -> bytes:
    if data_dir is None:
        return secrets.token_bytes(SESSION_KEY_BYTES)
    path = Path(data_dir) / SECRET_KEY_FILE
    key = _legacy_key(path)
    if key is not None:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(SESSION_KEY_BYTES)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(key)
    tmp.chmod(0o600)
    tmp.replace(path)
    log.info("generated the dashboard session key in %s", path)
    return key


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
    "User",
    "current_user",
    "require_login",
    "csrf_token",
    "login_user",
    "logout_user",
    "auth_pages",
    "init_auth",
]
