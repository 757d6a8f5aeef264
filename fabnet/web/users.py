"""Who a request may be: ``User`` (roles, the makers it acts for, what it may see) and the
cache of bearer-token look-ups. Apart from ``fabnet.web.auth`` because these are plain values
and a cache, with no Flask request behind them; ``auth`` re-exports every name."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fabnet.store.accounts import Account, Accounts, Role, token_digest

OPERATOR = Role.OPERATOR.value
MAKER = Role.MAKER.value
REQUESTER = Role.REQUESTER.value
BOOTSTRAP_USER_ID = "bootstrap-operator"
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
