"""The key that signs the dashboard's session cookies: the database's (``hub_secrets``) so
every hub process behind one load balancer reads the others' cookies, a key file in the data
folder without a database, or a random one. Apart from ``fabnet.web.auth`` because it is
storage and start-up, not who is asking."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError

from fabnet.store.database import Database
from fabnet.store.hub_secrets import HubSecrets

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "web_secret_key"  # where hubs before issue 9 kept the session key
SESSION_KEY_SECRET = "web-session-key"  # its name in the database (fabnet.store.hub_secrets)
SESSION_KEY_BYTES = 32

__all__ = ["SECRET_KEY_FILE", "SESSION_KEY_SECRET", "install_session_key"]


def install_session_key(app: Flask, data_dir: Path | None, db: Database | None) -> None:
    """Give ``app`` its session key: with ``db`` the database's (a ``data_dir/web_secret_key``
    written before issue 9 is adopted into it; if the database does not answer yet, the key is
    read when it first does), else ``data_dir``'s key file (created once, mode 0600), else a
    random key that lives as long as the app."""
    if db is None:
        app.secret_key = _secret_key(data_dir)
        return
    try:
        app.secret_key = _shared_key(db, data_dir)
    except SQLAlchemyError as exc:  # the app still answers /healthz (503) meanwhile
        log.warning("session key not read, the database does not answer: %s", exc)
        app.session_interface = _LateKeySessions(lambda: _shared_key(db, data_dir))


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
