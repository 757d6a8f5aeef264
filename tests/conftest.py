"""Fixtures for every test package: a real Mosquitto the suite starts on a free port.

Never the system broker on 1883. Both fixtures yield a ``BrokerHandle``:

- ``mosquitto`` (session scope): one broker for the whole run. Use a fresh client id per test
  (``handle.settings(...)`` does) so persistent sessions of other tests do not interfere.
- ``mosquitto_fresh`` (function scope): a broker of the test's own, to ``kill()``/``stop()``/
  ``start()`` through ``handle.broker`` (restarts keep the port and the persistence).

Users: the hub user ``hub`` and agents ``alice``, ``bob``, ``carol``, ``dave`` (password in
``handle.users``); ``handle.add_users({...})`` adds more to a running broker. The generated ACL
of DESIGN.md §3 applies and anonymous access is refused. A missing mosquitto fails the tests
with ToolMissing saying how to install it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pg_support import fresh_pg_database

from fabnet.bus.broker import MosquittoBroker, check_login
from fabnet.bus.client import BusSettings

HUB_USER = "hub"
DEFAULT_USERS = {
    HUB_USER: "hub-secret-0123456789",  # >= 16 characters: configs refuse shorter secrets
    "alice": "alice-secret-0123456789",
    "bob": "bob-secret-0123456789",
    "carol": "carol-secret-0123456789",
    "dave": "dave-secret-0123456789",
}


@dataclass
class BrokerHandle:
    """A running test broker: where it is, who may use it, and the process to kill/restart."""

    broker: MosquittoBroker
    users: dict[str, str]
    hub_user: str = HUB_USER

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    def settings(self, user: str, client_id: str | None = None, **overrides: Any) -> BusSettings:
        """BusSettings for ``user``; a unique client id unless one is given."""
        cid = client_id or f"{user}-{uuid.uuid4().hex[:10]}"
        base = BusSettings(self.host, self.port, user, self.users[user], cid)
        return replace(base, **overrides)

    def add_users(self, users: Mapping[str, str]) -> None:
        """Add broker users to the running broker; returns once the broker accepts them."""
        self.users.update(users)
        self.broker.set_users(self.users, self.hub_user)
        name = next(iter(users))
        for _ in range(100):
            if check_login(self.host, self.port, name, self.users[name]):
                return
        raise AssertionError(f"broker did not accept the new user {name!r} after SIGHUP")


def _start(data_dir: Path) -> BrokerHandle:
    # several connections per username (fresh client ids per test): ids stay unbound here
    broker = MosquittoBroker(
        data_dir, users=DEFAULT_USERS, hub_user=HUB_USER, bind_client_ids=False
    )
    broker.start()
    return BrokerHandle(broker=broker, users=dict(DEFAULT_USERS))


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One Mosquitto for the whole test session (do not kill it; use ``mosquitto_fresh``)."""
    handle = _start(tmp_path_factory.mktemp("mosquitto"))
    yield handle
    handle.broker.stop()


@pytest.fixture
def mosquitto_fresh(tmp_path: Path) -> Iterator[BrokerHandle]:
    """A Mosquitto of this test's own, free to kill and restart."""
    handle = _start(tmp_path / "mosquitto")
    yield handle
    handle.broker.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new PostgreSQL database of this test's own (``tests/pg_support.py``), dropped after."""
    yield from fresh_pg_database()
