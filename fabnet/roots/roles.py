"""What a hub process does (``fabnet hub --role``), what each role needs of the configuration, and
the broker client id each process connects with.

- ``all``: one process does everything (the default; the only role on SQLite).
- ``api``: HTTP only — REST API, dashboard, G-code downloads; commands it must send to agents
  (cancel, pause, resume, configure) go out over a bus client that subscribes to nothing.
- ``dispatcher``: the agents' events (MQTT shared subscriptions), the scheduler's sweeps and
  offers; no HTTP. Any number of each share one PostgreSQL database and one broker.
"""

from __future__ import annotations

import enum
import os
import re
import socket

from fabnet.config import HubConfig
from fabnet.errors import ConfigError

MAX_CLIENT_ID = 64  # fabnet.bus.topics.check_id
SHARED_SESSION_EXPIRY_S = 0
"""Broker session lifetime of an ``api`` or ``dispatcher`` process's client: none, the session
ends with the connection. Its client id names one process, so nobody would resume it; and
Mosquitto keeps handing an offline member of a shared subscription its share of the agents'
events, so a dead dispatcher's lingering session would swallow them. What a dispatcher had
received but not yet acknowledged when it died, agents send again (``events.ack``)."""


class Role(enum.Enum):
    ALL = "all"
    API = "api"
    DISPATCHER = "dispatcher"

    @property
    def serves_http(self) -> bool:
        return self is not Role.DISPATCHER

    @property
    def dispatches(self) -> bool:
        return self is not Role.API


def check_role(config: HubConfig, role: Role) -> None:
    """Raise ConfigError when ``config`` cannot run ``role`` next to other hub processes."""
    if role is Role.ALL:
        return
    if config.database_url.startswith("sqlite"):
        raise ConfigError(
            f'--role {role.value} needs PostgreSQL ([database] url = "postgresql+psycopg2://..."):'
            " SQLite is one process's database; run one `fabnet hub` (--role all) on it"
        )
    if config.broker.accounts == "file":
        raise ConfigError(
            f'--role {role.value} needs [broker] accounts = "dynsec" (or "none"): a broker'
            " with a password file makes every connection's client id its username"
            " (use_username_as_clientid), so two hub processes would throw each other off"
        )
    if role is Role.DISPATCHER and not config.public_url:
        raise ConfigError(
            "--role dispatcher needs [http] public_url: the address agents download G-code from"
            " (an api process, or the load balancer in front of the api processes)"
        )


def client_id(config: HubConfig, role: Role, *, host: str = "", pid: int = 0) -> str:
    """The broker client id of this hub process.

    ``all`` keeps the one stable id ``fabnet-hub-<hub id>`` (its session survives restarts).
    Other roles get ``fabnet-hub-<role>-<host>-<pid>``: unique per process, so processes never
    take over each other's connection; the hub's broker user is not bound to one client id
    (see ``fabnet.bus.dynsec``)."""
    if role is Role.ALL:
        return f"fabnet-hub-{config.hub_id}"
    host = re.sub(r"[^A-Za-z0-9_-]", "-", host or socket.gethostname()) or "host"
    tail = f"-{pid or os.getpid()}"
    head = f"fabnet-hub-{role.value}-"
    return head + host[: MAX_CLIENT_ID - len(head) - len(tail)] + tail
