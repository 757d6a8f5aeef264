"""The ``[economy]`` and ``[federation]`` tables of a hub's configuration (split from
``fabnet.config``, which reads the rest and calls these), and the one helper both files use to
turn a value's InvalidInput into a ConfigError naming the file and the key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fabnet.bus.topics import check_id
from fabnet.core.credits import Terms
from fabnet.errors import ConfigError, InvalidInput
from fabnet.profiles.reader import TableReader


@dataclass(frozen=True)
class FederationConfig:
    """``[federation]`` (issue 12): this hub's name among its peers (default: its id), the file
    holding its Ed25519 private key (default: ``<data_dir>/federation/hub_ed25519.pem``,
    made on first use) and the clock skew allowed on a signed request between hubs.

    The federation tick (``fabnet.federation.tick``) runs every ``tick_s`` in dispatching
    roles: it advertises this hub's capacity every ``advertise_every_s``, offers abroad the
    tasks that waited ``overflow_after_s`` (or that home cannot serve), believing a peer's
    capacity for ``capacity_max_age_s``; a peer holds a task for ``peer_lease_s`` after its
    last report and has ``transfer_timeout_s`` to answer a transfer (the offer's timeout).
    """

    name: str
    key_file: Path
    max_clock_skew_s: float = 300.0
    # the same defaults as advertise.ADVERTISE_EVERY_S, capacity.DEFAULT_MAX_AGE_S and
    # overflow.DEFAULT_MAX_WAIT (a test keeps them equal: reading a config imports none of them)
    tick_s: float = 5.0
    advertise_every_s: float = 60.0
    capacity_max_age_s: float = 600.0
    overflow_after_s: float = 24 * 3600.0
    peer_lease_s: float = 900.0
    transfer_timeout_s: float = 60.0


def economy_terms(table: TableReader) -> Terms:
    """``[economy]``: the network fee (percent, on top of makers' prices), the currency shown
    beside credits and one credit's value in it, the hours after which the hub accepts a done
    part for a silent requester, how many credits of debt a requester may commit, and whether
    every job must be covered by credits (``require_credits``)."""
    try:
        return Terms(
            fee_bp=round(table.number("fee_percent", 0, 50, 10) * 100),
            currency=table.text("currency", "EUR"),
            credit_value_milli=round(table.number("credit_value", 0.001, 1e9, 1) * 1000),
            auto_accept_after_s=table.number("auto_accept_after_h", 0.01, 8760, 72) * 3600,
            debt_limit_mc=round(table.number("allow_debt_credits", 0, 1e9, 0) * 1000),
            require_credits=table.boolean("require_credits", False),
        )
    except InvalidInput as exc:
        raise ConfigError(f"{table.file}: [economy] {exc}") from None


def federation_config(table: TableReader, hub_id: str, data_dir: Path) -> FederationConfig:
    """``[federation]``: ``name`` (checked as ids are: it travels in headers and topics),
    ``key_file``, ``max_clock_skew_s`` and the timings of the federation tick. A capacity
    summary must outlive the advertising period, or a peer's summary goes stale between two
    advertisements and it is never offered work."""
    key_file = table.path("key_file", "")
    day, fed = 86400.0, FederationConfig
    config = FederationConfig(
        name=canonical_value(table, "name", check_id, table.text("name", hub_id)),
        key_file=key_file or data_dir / "federation" / "hub_ed25519.pem",
        max_clock_skew_s=table.number("max_clock_skew_s", 1, 3600, fed.max_clock_skew_s),
        tick_s=table.number("tick_s", 0.2, 3600, fed.tick_s),
        advertise_every_s=table.number("advertise_every_s", 1, day, fed.advertise_every_s),
        capacity_max_age_s=table.number("capacity_max_age_s", 1, 7 * day, fed.capacity_max_age_s),
        overflow_after_s=table.number("overflow_after_s", 1, 365 * day, fed.overflow_after_s),
        peer_lease_s=table.number("peer_lease_s", 5, 30 * day, fed.peer_lease_s),
        transfer_timeout_s=table.number("transfer_timeout_s", 1, 3600, fed.transfer_timeout_s),
    )
    if config.capacity_max_age_s <= config.advertise_every_s:
        raise ConfigError(
            f"{table.source('capacity_max_age_s')} must be greater than advertise_every_s "
            f"({config.advertise_every_s:g}), got {config.capacity_max_age_s:g}"
        )
    return config


def canonical_value(
    t: TableReader, key: str, canonical: Callable[[str, str], str], value: str
) -> str:
    """``canonical(value)``, its InvalidInput turned into a ConfigError naming file and key."""
    try:
        return canonical(value, key)
    except InvalidInput as exc:
        raise ConfigError(f"{t.source(key)}: {exc}") from None
