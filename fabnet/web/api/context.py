"""What the API's route modules share: the hub's parts, paging, and ownership checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flask import abort

from fabnet.bus.dynsec import DynsecAdmin
from fabnet.config import BrokerConfig, FederationConfig
from fabnet.core.credits import Terms
from fabnet.hub.service import HubService
from fabnet.store.listings import Listings
from fabnet.web.auth import User
from fabnet.web.schemas import Field, Schema

MAX_PAGE = 1000
DEFAULT_PAGE = 50
MAX_OFFSET = 2**31 - 1  # beyond any real listing, and inside every database's OFFSET

LIMIT = Field("limit", "integer", minimum=1, maximum=MAX_PAGE, default=DEFAULT_PAGE)
OFFSET = Field(
    "offset", "integer", minimum=0, maximum=MAX_OFFSET, default=0, description="rows to skip"
)
PAGE = Schema("Page", (LIMIT, OFFSET))


class OfferDecider(Protocol):
    """Applies a maker's decision on an offer as if their agent had sent it."""

    def decide(
        self, machine_id: str, task_id: str, offer_no: int, accept: bool, reason: str
    ) -> None: ...


class MachineConfigurer(Protocol):
    """Sends a machine's new loaded material and policy to its agent (``machine.configure``);
    True when it went out now, False when it waits for the broker."""

    def configure_machine(
        self,
        machine_id: str,
        material: str,
        materials: tuple[str, ...],
        max_task_hours: float | None,
        auto_accept: bool,
        windows: tuple[str, ...],
    ) -> bool: ...


ACCOUNTS_DYNSEC, ACCOUNTS_FILE, ACCOUNTS_NONE = "dynsec", "file", "none"


@dataclass(frozen=True)
class BrokerSettings:
    """How agents reach the broker, and how the hub gives them accounts there (``accounts``):

    - ``dynsec``: created, disabled and removed at run time through Mosquitto's
      dynamic-security plugin; the hub's own login (``hub_user``) is the plugin's admin.
    - ``file``: the Mosquitto password file ``password_file`` is rewritten (Mosquitto reads it
      on SIGHUP); with ``password_file`` None the account is only recorded.
    - ``none``: recorded only; the operator gives agents broker logins by other means.
    """

    url: str = "mqtt://127.0.0.1:1883"
    hub_user: str = "hub"
    hub_password: str = ""
    password_file: Path | None = None
    accounts: str = ACCOUNTS_FILE
    ca_file: Path | None = None  # the CA agents and the hub trust for mqtts://
    admin_timeout_s: float = 10.0

    def admin(self) -> DynsecAdmin:
        """A dynamic-security admin connection with the hub's login (over TLS for mqtts://)."""
        where = BrokerConfig.from_url(self.url, self.hub_user, self.hub_password, "hub broker")
        return DynsecAdmin(
            where.host,
            where.port,
            self.hub_user,
            self.hub_password,
            tls=where.tls,
            ca_file=self.ca_file,
            timeout_s=self.admin_timeout_s,
        )


@dataclass
class ApiContext:
    """The hub's parts the routes call."""

    service: HubService
    listings: Listings
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    hub_url: str = "http://127.0.0.1:5000"
    offers: OfferDecider | None = None
    configurer: MachineConfigurer | None = None
    library_dir: Path | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    economy_terms: Terms | None = None  # the config's [economy] (issue 11); None: defaults
    federation: FederationConfig | None = None  # [federation] (issue 12); None: not set up

    @property
    def store(self) -> Any:
        return self.service.store

    def machine_configurer(self) -> MachineConfigurer | None:
        """Who pushes a machine's new configuration to its agent; None without a dispatcher."""
        return self.configurer


def forbid(reason: str) -> None:
    """Answer 403 with ``reason``."""
    abort(403, description=reason)


def own_makers(user: User) -> frozenset[str] | None:
    """The makers whose machines ``user`` may see: None (all) for operators."""
    return None if user.is_operator else user.maker_ids


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
