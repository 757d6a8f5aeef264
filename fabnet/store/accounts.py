"""Accounts: users with roles and scrypt-hashed passwords, API tokens kept as sha256, broker
identities of agents, and machine changes asked for through the API."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from fabnet.core.ids import new_id
from fabnet.core.timeutil import require_utc
from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.store.account_models import BrokerAccountRow, MachineChangeRow, TokenRow, UserRow
from fabnet.store.database import Database
from fabnet.store.web_sessions import WebSessions

log = logging.getLogger(__name__)

SCRYPT_N = 2**14  # ~16 MiB, ~50 ms per hash on a laptop core
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 64
TOKEN_BYTES = 32
MIN_PASSWORD_CHARS = 8
LAST_USED_RESOLUTION = timedelta(minutes=1)  # token use is written at most this often
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")
_DUMMY_SALT = b"\0" * SALT_BYTES


class Role(StrEnum):
    MAKER = "maker"
    REQUESTER = "requester"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Account:
    """A user as stored (no password material)."""

    user_id: str
    name: str
    full_name: str
    roles: frozenset[str]
    maker_ids: frozenset[str]
    created_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """An API token's record; the raw token is never kept."""

    token_id: str
    user_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class MachineChange:
    machine_id: str
    user_name: str
    at: datetime
    change: dict[str, Any]


def hash_password(password: str, salt: bytes) -> bytes:
    """scrypt of ``password`` with ``salt`` (``HASH_BYTES`` long)."""
    return hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES
    )


def token_digest(raw: str) -> str:
    """The stored form of an API token: hex sha256."""
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_roles(roles: Iterable[str]) -> frozenset[str]:
    """Role names, checked; raises ``InvalidInput`` naming a bad one or an empty set."""
    out = set()
    for role in roles:
        try:
            out.add(Role(role).value)
        except ValueError:
            choices = ", ".join(r.value for r in Role)
            raise InvalidInput(f"role must be one of {choices}, got {role!r}") from None
    if not out:
        raise InvalidInput("roles must name at least one role, got none")
    return frozenset(out)


def check_name(name: str) -> str:
    """A login name: letters, digits and ``. _ @ + -``, 1-200 chars; raises ``InvalidInput``."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"user name must be 1-200 letters, digits or . _ @ + - (no spaces), got {name!r:.80}"
        )
    return name


def _account(row: UserRow) -> Account:
    return Account(
        row.id,
        row.name,
        row.full_name,
        frozenset(row.roles),
        frozenset(row.maker_ids),
        row.created_at,
    )


def _token(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        row.id, row.user_id, row.name, row.created_at, row.last_used_at, row.revoked_at
    )


class Accounts:
    """Users, tokens, broker identities and machine change records. Thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.sessions = WebSessions(db)

    def add_user(
        self,
        name: str,
        password: str,
        roles: Iterable[str],
        now: datetime,
        *,
        maker_ids: Iterable[str] = (),
        full_name: str = "",
    ) -> Account:
        """Create a user; raises ``InvalidInput`` (name, roles, short password, maker ids
        without the maker role) or ``Conflict`` (name taken)."""
        check_name(name)
        role_set = parse_roles(roles)
        makers = frozenset(maker_ids)
        if makers and Role.MAKER not in role_set:
            raise InvalidInput(f"maker_ids need the maker role, got roles {sorted(role_set)}")
        if len(password) < MIN_PASSWORD_CHARS:
            raise InvalidInput(
                f"password must have at least {MIN_PASSWORD_CHARS} characters, got {len(password)}"
            )
        salt = secrets.token_bytes(SALT_BYTES)
        row = UserRow(
            id=new_id(),
            name=name,
            full_name=full_name,
            password_salt=salt,
            password_hash=hash_password(password, salt),
            roles=sorted(role_set),
            maker_ids=sorted(makers),
            created_at=require_utc("now", now),
        )
        with self._db.write() as s:
            if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                raise Conflict(f"user {name!r} already exists")
            s.add(row)
            return _account(row)

    def find_user(self, user_id: str) -> Account | None:
        """The user with id ``user_id``, or None."""
        with self._db.read() as s:
            row = s.get(UserRow, user_id)
            return _account(row) if row else None

    def user_named(self, name: str) -> Account:
        """The user called ``name``; raises ``NotFound``."""
        with self._db.read() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"user {name!r} not found")
            return _account(row)

    def list_users(self) -> list[Account]:
        """All users by name."""
        with self._db.read() as s:
            return [_account(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def check_password(self, name: str, password: str) -> Account | None:
        """The user if ``password`` is theirs, else None (same work either way)."""
        with self._db.read() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            salt = row.password_salt if row else _DUMMY_SALT
            expected = row.password_hash if row else b""
            account = _account(row) if row else None
        ok = hmac.compare_digest(hash_password(password, salt), expected)
        return account if ok and account else None

    def set_password(self, name: str, password: str) -> None:
        """Replace ``name``'s password and end their dashboard sessions; raises ``NotFound``
        or ``InvalidInput``."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise InvalidInput(
                f"password must have at least {MIN_PASSWORD_CHARS} characters, got {len(password)}"
            )
        salt = secrets.token_bytes(SALT_BYTES)
        with self._db.write() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"user {name!r} not found")
            row.password_salt = salt
            row.password_hash = hash_password(password, salt)
            user_id = row.id
        self.sessions.end_all(user_id, datetime.now(UTC))

    def add_maker_id(self, user_id: str, maker_id: str) -> Account:
        """Give the maker user ``user_id`` the agent ``maker_id``; raises ``NotFound``,
        ``InvalidInput`` (not a maker) or ``Conflict`` (another user owns it)."""
        with self._db.write() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"user {user_id} not found")
            if Role.MAKER not in row.roles:
                raise InvalidInput(f"user {row.name!r} has no maker role")
            for other in s.scalars(select(UserRow).where(UserRow.id != user_id)):
                if maker_id in other.maker_ids:
                    raise Conflict(f"maker {maker_id!r} belongs to another user")
            if maker_id not in row.maker_ids:
                row.maker_ids = sorted({*row.maker_ids, maker_id})
            return _account(row)

    def issue_token(self, user_id: str, name: str, now: datetime) -> tuple[str, TokenInfo]:
        """A new token for ``user_id``: (raw token — shown once, never stored — and its record).

        Raises ``NotFound`` for an unknown user, ``InvalidInput`` for an empty or long name.
        """
        if not name.strip() or len(name) > 100:
            raise InvalidInput(f"token name must be 1-100 characters, got {name!r:.120}")
        raw = "fn_" + secrets.token_urlsafe(TOKEN_BYTES)
        row = TokenRow(
            id=new_id(),
            user_id=user_id,
            name=name,
            token_sha256=token_digest(raw),
            created_at=require_utc("now", now),
            last_used_at=None,
            revoked_at=None,
        )
        with self._db.write() as s:
            if s.get(UserRow, user_id) is None:
                raise NotFound(f"user {user_id} not found")
            s.add(row)
            return raw, _token(row)

    def user_by_token(self, raw: str, now: datetime) -> Account | None:
        """The owner of a live token, or None; notes its use (at most once a minute)."""
        digest = token_digest(raw)
        with self._db.read() as s:
            found = s.execute(
                select(TokenRow, UserRow)
                .join(UserRow, UserRow.id == TokenRow.user_id)
                .where(TokenRow.token_sha256 == digest, TokenRow.revoked_at.is_(None))
            ).first()
            if found is None:
                return None
            token, user = found
            account, last_used, token_id = _account(user), token.last_used_at, token.id
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            with self._db.write() as s:
                row = s.get(TokenRow, token_id)
                if row is not None:
                    row.last_used_at = now
        return account

    def list_tokens(self, user_id: str) -> list[TokenInfo]:
        """The user's tokens, newest first (revoked ones included)."""
        query = (
            select(TokenRow)
            .where(TokenRow.user_id == user_id)
            .order_by(TokenRow.created_at.desc(), TokenRow.id)
        )
        with self._db.read() as s:
            return [_token(r) for r in s.scalars(query)]

    def revoke_token(self, user_id: str, token_id: str, now: datetime) -> TokenInfo:
        """Revoke one of ``user_id``'s tokens (again: no change); raises ``NotFound``."""
        with self._db.write() as s:
            row = s.get(TokenRow, token_id)
            if row is None or row.user_id != user_id:
                raise NotFound(f"token {token_id} not found")
            if row.revoked_at is None:
                row.revoked_at = require_utc("now", now)
            return _token(row)

    def broker_hashes(self) -> dict[str, str]:
        """``{agent_id: mosquitto $7$ hash}`` of every registered agent."""
        with self._db.read() as s:
            rows = s.scalars(select(BrokerAccountRow).order_by(BrokerAccountRow.agent_id))
            return {r.agent_id: r.password_hash for r in rows}

    def add_broker_account(
        self, agent_id: str, password_hash: str, user_id: str | None, now: datetime
    ) -> bool:
        """Record an agent's broker identity; False (and no change) if it has one already."""
        with self._db.write() as s:
            if s.get(BrokerAccountRow, agent_id) is not None:
                return False
            s.add(
                BrokerAccountRow(
                    agent_id=agent_id,
                    user_id=user_id,
                    password_hash=password_hash,
                    created_at=require_utc("now", now),
                )
            )
            return True

    def set_broker_hash(self, agent_id: str, password_hash: str) -> bool:
        """Replace a recorded agent's broker password hash; False if it has no identity."""
        with self._db.write() as s:
            row = s.get(BrokerAccountRow, agent_id)
            if row is None:
                return False
            row.password_hash = password_hash
            return True

    def remove_broker_account(self, agent_id: str) -> bool:
        """Forget an agent's broker identity; False if it had none."""
        with self._db.write() as s:
            row = s.get(BrokerAccountRow, agent_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def record_machine_change(
        self, machine_id: str, user_name: str, change: dict[str, Any], now: datetime
    ) -> MachineChange:
        """Keep a policy / material change asked for on ``machine_id``."""
        now = require_utc("now", now)
        with self._db.write() as s:
            s.add(
                MachineChangeRow(machine_id=machine_id, user_name=user_name, at=now, change=change)
            )
        return MachineChange(machine_id, user_name, now, change)

    def machine_changes(self, machine_id: str, limit: int = 20) -> list[MachineChange]:
        """The latest recorded changes of ``machine_id``, newest first."""
        query = (
            select(MachineChangeRow)
            .where(MachineChangeRow.machine_id == machine_id)
            .order_by(MachineChangeRow.id.desc())
            .limit(limit)
        )
        with self._db.read() as s:
            return [
                MachineChange(r.machine_id, r.user_name, r.at, r.change) for r in s.scalars(query)
            ]
