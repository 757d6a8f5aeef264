"""``BusSettings``: how a hub or an agent reaches the broker and who it is there, range-checked
once at the edge (``check_settings``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabnet.bus import tls as bus_tls
from fabnet.bus.topics import check_id
from fabnet.errors import InvalidInput


@dataclass(frozen=True)
class BusSettings:
    """How to reach the broker and who we are there. ``client_id`` must be stable across
    restarts (it names the persistent session); the agent's ``username`` is its agent id.
    ``tls`` (an ``mqtts://`` URL): the broker's certificate must chain to ``ca_file`` (None:
    the system's CAs) and name ``host``; there is no switch to turn verification off."""

    host: str
    port: int
    username: str
    password: str
    client_id: str
    keepalive_s: int = 30
    session_expiry_s: int = 86_400
    max_queued: int = 10_000  # QoS 1 messages waiting for the broker, in flight included
    max_inflight: int = 20
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    tls: bool = False
    ca_file: Path | None = None

    @classmethod
    def from_broker(cls, broker: Any, client_id: str) -> BusSettings:
        """From a ``fabnet.config.BrokerConfig`` (host, port, login, tls, ca_file). A hub whose
        broker has a password file (``accounts = "file"``) gets its username as client id:
        that broker's ``use_username_as_clientid`` makes it so whatever we send."""
        if getattr(broker, "accounts", None) == "file":
            client_id = broker.username
        return cls(
            broker.host,
            broker.port,
            broker.username,
            broker.password,
            client_id,
            tls=broker.tls,
            ca_file=broker.ca_file,
        )


def check_settings(settings: BusSettings) -> BusSettings:
    """Range-check ``settings``; raises InvalidInput naming the bad field."""
    check_id(settings.client_id, "client_id")
    if not 0 < settings.port < 65536:
        raise InvalidInput(f"broker port must be 1..65535, got {settings.port}")
    if not settings.username or not settings.password:
        raise InvalidInput("broker username and password must not be empty")
    if not 5 <= settings.keepalive_s <= 3600:
        raise InvalidInput(f"keepalive_s must be 5..3600, got {settings.keepalive_s}")
    if not 1 <= settings.reconnect_min_s <= settings.reconnect_max_s:
        raise InvalidInput("reconnect_min_s must be >= 1 and <= reconnect_max_s")
    bus_tls.check_ca_file(settings.ca_file, settings.tls)
    return settings
