"""Engine and sessions: SQLite pragmas and writer locking, PostgreSQL pooling, transactions."""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from fabnet.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///var/fabnet.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
# The hub serves HTTP from one thread per request (werkzeug threaded), and each request holds at
# most one connection at a time. The pool lets that many threads in at once and makes the rest
# wait in line for a few seconds (sqlalchemy.exc.TimeoutError after POOL_TIMEOUT_S, which the
# web layer answers with 503) rather than opening connections without bound.
POOL_SIZE = 64  # connections kept open (a new SQLite connection re-reads the schema)
POOL_OVERFLOW = 0  # none opened beyond POOL_SIZE: more threads wait their turn
POOL_TIMEOUT_S = 10.0  # how long a thread waits for a free connection
# PostgreSQL connections are server processes (max_connections defaults to 100, shared by every
# hub on the database), so a hub keeps fewer of them.
PG_POOL_SIZE = 10
PG_POOL_OVERFLOW = 20
# Connections older than this are replaced at checkout, before a firewall's or the server's
# idle timeout can cut them; there is no per-checkout ping (see _server_socket_check).
PG_POOL_RECYCLE_S = 1800
_WRITE = "fabnet_write"
T = TypeVar("T")


def _sqlite_setup(engine: Engine) -> None:
    """WAL + foreign keys on connect; writers open with ``BEGIN IMMEDIATE``.

    pysqlite's own transaction handling is switched off so that we emit BEGIN ourselves:
    a write transaction takes SQLite's write lock up front, so two hub threads cannot both
    read a task and then race to update it (the second waits, up to the busy timeout).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by the owner only, before SQLite does
    it with the umask's mode; SQLite gives its -wal and -shm files the same mode. A file left
    group- or world-readable by an older fabnet is tightened (issue 13)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o077 and os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
            log.warning("%s was readable by others (mode %o): now owner-only", path, mode & 0o777)
    finally:
        os.close(fd)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists() and extra.stat().st_mode & 0o077:
            extra.chmod(0o600)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file its folder is created. Raises ``ConfigError``."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database url is not valid: {url!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        pool: dict[str, Any] = {}
        if parsed.database and parsed.database != ":memory:":
            pool = {
                "poolclass": QueuePool,
                "pool_size": POOL_SIZE,
                "max_overflow": POOL_OVERFLOW,
                "pool_timeout": POOL_TIMEOUT_S,
            }
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            **pool,
        )
        _sqlite_setup(engine)
        return engine
    engine = create_engine(
        parsed,
        pool_size=PG_POOL_SIZE,
        max_overflow=PG_POOL_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
        pool_recycle=PG_POOL_RECYCLE_S,
    )
    _server_socket_check(engine)
    return engine


def _server_socket_check(engine: Engine) -> None:
    """On checkout, discard a pooled connection whose socket has something to read.

    An idle connection in the pool is owed nothing by the server, so a readable socket means
    the server closed it or said goodbye (restart, ``pg_terminate_backend``, idle timeout).
    One ``poll`` with no wait costs no round trip, unlike ``pool_pre_ping``'s ``SELECT 1``
    per checkout (issue 9: PostgreSQL counted one more transaction per checkout). Raising
    ``DisconnectionError`` makes the pool open a fresh connection instead. A connection that
    dies silently (a dropped network path) is caught by ``Database.reading``'s retry.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        fileno = getattr(dbapi_conn, "fileno", None)
        if fileno is None:
            return
        try:
            poller = select.poll()
            poller.register(fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
            ready = poller.poll(0)
        except (OSError, ValueError) as exc:  # the socket is already gone
            raise DisconnectionError(f"pooled connection unusable: {exc}") from exc
        if ready:
            raise DisconnectionError("the server closed this pooled connection")


class Database:
    """An engine and its session factory; hands out read and write transactions.

    Thread-safe: every transaction gets its own ``Session`` from the factory.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a write transaction, committed on exit, rolled back on error."""
        with self._sessions() as session, session.begin():
            session.connection(execution_options={_WRITE: True})
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session in a read transaction."""
        with self._sessions() as session, session.begin():
            yield session

    def reading(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in a read transaction, run once more on a fresh connection if
        the first one turned out to be disconnected (server restarted, connection killed):
        a read is safe to repeat, and the pool has then dropped the dead connections."""
        try:
            with self.read() as s:
                return work(s)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("database connection lost (%s); reading again", exc.orig)
        with self.read() as s:
            return work(s)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
