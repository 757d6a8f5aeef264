"""An agent's broker account: a ``$7$`` hash in the store and, as ``[broker] accounts`` says,
a client in Mosquitto's dynamic-security plugin or a line in its password file. Apart from
``registration`` because accounts are also reset, disabled, enabled and deleted long after a
machine was registered."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from fabnet.bus.broker import password_hash
from fabnet.bus.topics import check_id
from fabnet.errors import Conflict, DeviceError, NotFound
from fabnet.store import Store
from fabnet.web.api.context import ACCOUNTS_DYNSEC, ACCOUNTS_FILE, BrokerSettings

log = logging.getLogger(__name__)

PASSWORD_BYTES = 18
ISSUED = {
    ACCOUNTS_DYNSEC: "new broker password for agent {agent}, shown once; the broker accepts it now",
    ACCOUNTS_FILE: "new broker password for agent {agent}, shown once; written to the broker's "
    "password file, which Mosquitto reads on SIGHUP",
    "unwritten": "new broker password for agent {agent}, shown once; recorded only: this hub "
    "writes no broker accounts, so the operator must add it to the broker",
}


def _read_password_file(path: Path) -> dict[str, str]:
    """``{user: hash}`` of an existing Mosquitto password file ({} if there is none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))
    return {user: digest for user, digest in pairs}


def write_password_file(
    store: Store, broker: BrokerSettings, removed: Collection[str] = ()
) -> Path | None:
    """Update Mosquitto's password file: the hub's user and every recorded agent, merged into
    what the file holds already, so accounts made with ``fabnet broker-config`` stay (issue
    13); ``removed`` users are taken out.

    ``fabnet.bus.broker.write_password_file`` needs every password in clear; the hub keeps
    only hashes, so the recorded ``$7$`` lines are written as they are.
    """
    if broker.password_file is None:
        return None
    kept = _read_password_file(broker.password_file)
    entries = {user: digest for user, digest in kept.items() if user not in removed}
    entries.update(store.accounts.broker_hashes())
    if broker.hub_password:
        entries[broker.hub_user] = password_hash(broker.hub_password)
    text = "".join(f"{user}:{digest}\n" for user, digest in sorted(entries.items()))
    path = broker.password_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)  # Mosquitto reads it on SIGHUP
    return path


class AgentAccounts:
    """Agents' broker accounts: a ``$7$`` hash in the store and, as ``broker.accounts`` says,
    a client in the dynamic-security plugin or a line in the password file. The broker is
    changed first: when it refuses (DeviceError, HTTP 502) the store is left as it was."""

    def __init__(self, store: Store, broker: BrokerSettings) -> None:
        self.store, self.broker = store, broker
        self.dynsec = broker.accounts == ACCOUNTS_DYNSEC
        self.file = broker.accounts == ACCOUNTS_FILE and broker.password_file is not None

    def exists(self, agent: str) -> bool:
        return agent in self.store.accounts.broker_hashes()

    def _known(self, agent: str) -> str:
        check_id(agent, "agent")
        if not self.exists(agent):
            raise NotFound(f"agent {agent} has no broker account (register a machine first)")
        return agent

    def issued_note(self, agent: str) -> str:
        mode = "unwritten" if not (self.dynsec or self.file) else self.broker.accounts
        return ISSUED[mode].format(agent=agent)

    def create(self, agent: str, user_id: str | None, now: datetime) -> str:
        """A new account; its password (shown once). Raises DeviceError if the broker refuses,
        Conflict if another registration gave ``agent`` an account meanwhile."""
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        if self.dynsec:
            self.broker.admin().create_agent(agent, password)
        added = done = False
        try:
            added = self.store.accounts.add_broker_account(
                agent, password_hash(password), user_id, now
            )
            if not added:
                raise Conflict(f"agent {agent} was given a broker account meanwhile")
            if self.file:
                write_password_file(self.store, self.broker)
            done = True
        finally:
            if not done:
                self._undo_create(agent, added)
        return password

    def _undo_create(self, agent: str, added: bool) -> None:
        if added:
            self.store.accounts.remove_broker_account(agent)
        if self.dynsec:
            try:
                self.broker.admin().delete_agent(agent)
            except DeviceError:
                log.exception("agent %s: could not take back its new broker account", agent)

    def reset(self, agent: str) -> str:
        """A new password for ``agent`` (the old one stops working); returns it."""
        self._known(agent)
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        if self.dynsec:
            self.broker.admin().set_password(agent, password)
        self.store.accounts.set_broker_hash(agent, password_hash(password))
        if self.file:
            write_password_file(self.store, self.broker)
        return password

    def set_enabled(self, agent: str, enabled: bool) -> None:
        """Disable (disconnects it now, refuses its log-ins) or enable ``agent``'s account."""
        self._known(agent)
        if not self.dynsec:
            raise Conflict(
                f'disabling or enabling an agent needs [broker] accounts = "dynsec"; this hub '
                f"has {self.broker.accounts!r} (delete the account instead)"
            )
        admin = self.broker.admin()
        if enabled:
            admin.enable(agent)
        else:
            admin.disable(agent)

    def delete(self, agent: str) -> None:
        """Remove ``agent``'s account: from the broker (it is disconnected) and the store."""
        self._known(agent)
        if self.dynsec:
            self.broker.admin().delete_agent(agent)
        self.store.accounts.remove_broker_account(agent)
        if self.file:
            write_password_file(self.store, self.broker, removed=(agent,))
