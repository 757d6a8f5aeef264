"""``FABNET_<TABLE>_<KEY>`` environment variables: which config key each one sets.

The variables are put into the config's tables as ``EnvValue`` text before the file is read,
so they pass through the same typed, range-checked getters as the file's own values. A
``FABNET_`` variable that names no key of either config (and is not one of the variables
other commands read, listed in ``OTHER_VARIABLES``) is an error naming it: a misspelt
``FABNET_DATABSE_URL`` must not be silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fabnet.errors import ConfigError
from fabnet.profiles.reader import EnvValue

PREFIX = "FABNET_"

# table -> keys that an environment variable may set, for each kind of config file
HUB_KEYS: Mapping[str, frozenset[str]] = {
    "hub": frozenset(
        {
            "id",
            "data_dir",
            "lease_s",
            "offer_timeout_s",
            "max_attempts",
            "sweep_interval_s",
            "slicer",
            "max_machines_per_agent",
            "max_consecutive_failures",
            "artifacts_dir",
            "token_secret",
        }
    ),
    "broker": frozenset({"url", "username", "password", "password_file", "ca_file", "accounts"}),
    "database": frozenset({"url"}),
    "http": frozenset({"host", "port", "public_url", "api_token", "threads", "health_port"}),
    "economy": frozenset(
        {
            "fee_percent",
            "currency",
            "credit_value",
            "auto_accept_after_h",
            "allow_debt_credits",
            "require_credits",
        }
    ),
    "federation": frozenset(  # issue 12
        {
            "name",
            "key_file",
            "max_clock_skew_s",
            "tick_s",
            "advertise_every_s",
            "capacity_max_age_s",
            "overflow_after_s",
            "peer_lease_s",
            "transfer_timeout_s",
        }
    ),
}
AGENT_KEYS: Mapping[str, frozenset[str]] = {
    "agent": frozenset({"id", "hub_url", "data_dir"}),
    "broker": frozenset({"url", "username", "password", "ca_file"}),
}

# FABNET_ variables that are not config keys: read by the command line and other modules.
OTHER_VARIABLES = frozenset(
    {
        "FABNET_HUB_URL",  # --hub of the requester/maker commands
        "FABNET_TOKEN",  # --token of the requester/maker commands
        "FABNET_HUB_PASSWORD",  # fabnet broker-config
        "FABNET_PROFILES_DIR",  # firmware profiles folder (fabnet.profiles.loader)
        "FABNET_DESIGNS_DIR",  # design library folder (fabnet.library.design)
        "FABNET_CURA_RESOURCES",  # CuraEngine's resources (fabnet.slicing.curaengine)
    }
)


def config_variable(name: str) -> tuple[str, str] | None:
    """The (table, key) that variable ``name`` sets in either config, or None."""
    rest = name[len(PREFIX) :].lower()
    for keys in (HUB_KEYS, AGENT_KEYS):
        for table, names in keys.items():
            key = rest.removeprefix(f"{table}_")
            if key != rest and key in names:
                return table, key
    return None


def apply_env(
    data: dict[str, Any], keys: Mapping[str, frozenset[str]], environ: Mapping[str, str]
) -> None:
    """Put every ``FABNET_*`` variable of ``environ`` that sets one of ``keys`` into ``data``
    (creating absent tables). Variables for the other kind of config are left alone.

    Raises ConfigError naming a variable that sets no key at all. Relative paths given this
    way are later taken against the current folder, not the file's (see ``TableReader.path``).
    """
    for name, value in sorted(environ.items()):
        if not name.startswith(PREFIX) or name in OTHER_VARIABLES:
            continue
        target = config_variable(name)
        if target is None:
            raise ConfigError(f"environment variable {name} names no fabnet setting; {_known()}")
        table, key = target
        if key not in keys.get(table, ()):
            continue
        section = data.setdefault(table, {})
        if isinstance(section, dict):  # otherwise the reader reports the table's own mistake
            section[key] = EnvValue(value, name)


def _known() -> str:
    names = sorted(
        {
            f"{PREFIX}{table.upper()}_{key.upper()}"
            for keys in (HUB_KEYS, AGENT_KEYS)
            for table, names in keys.items()
            for key in names
        }
    )
    return f"known: {', '.join(names)} (and {', '.join(sorted(OTHER_VARIABLES))})"
