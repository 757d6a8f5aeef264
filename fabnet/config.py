"""Hub and agent configuration: one TOML file, overridable by ``FABNET_*`` variables.

Everything is typed and range-checked at load and unknown keys are errors naming the key, so a
typo in a maker's agent.toml fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from fabnet.bus.topics import check_id
from fabnet.config_env import AGENT_KEYS, HUB_KEYS, apply_env
from fabnet.config_tables import FederationConfig, canonical_value, economy_terms, federation_config
from fabnet.core.credits import Terms
from fabnet.drivers.registry import DRIVER_OPTIONS, Scalar, check_driver_options
from fabnet.errors import ConfigError, InvalidInput
from fabnet.profiles.canonical import canonical_material, canonical_profile
from fabnet.profiles.reader import TableReader
from fabnet.secrets_check import secret

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
DEFAULT_DATABASE_URL = "sqlite:///var/fabnet.db"
# waitress worker threads of the hub; more made the slowest API answers slower on 2 cores
# (bench/serve.py), so raise it only for more simultaneous live pages (see fabnet.roots.http)
DEFAULT_HTTP_THREADS = 8
SLICER_CHOICES = ("builtin", "prusaslicer", "curaengine")
HUB_PASSWORD_HINT = "set the hub's broker password (fabnet init hub generates one; see README)"
AGENT_PASSWORD_HINT = "register the machine first (see README)"
API_TOKEN_HINT = "set the operator's API token (fabnet init hub generates one; see README)"
# sqlite:///relative/file.db (three slashes, no fourth): not absolute, not in memory
_SQLITE_RELATIVE = re.compile(
    r"^(?P<prefix>sqlite(\+\w+)?:///)(?P<file>(?!/)(?!:memory:)[^?]+)(?P<query>\?.*)?$"
)


BROKER_ACCOUNTS = ("dynsec", "file", "none")
_BROKER_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


@dataclass(frozen=True)
class BrokerConfig:
    """Where the MQTT broker is and who we are to it.

    ``tls`` comes from the URL scheme (``mqtts://``); ``ca_file`` None means the system's CAs.
    ``accounts`` (hub only) says how the hub gives registered agents a broker account:
    ``dynsec`` through Mosquitto's dynamic-security plugin at run time, ``file`` by rewriting
    ``password_file`` (static setup), ``none`` by recording them only.
    """

    host: str
    port: int
    username: str
    password: str
    password_file: Path | None = None  # the broker's password file the hub adds makers to
    tls: bool = False
    ca_file: Path | None = None
    accounts: str = "dynsec"

    @property
    def url(self) -> str:
        """``mqtt://host:port`` or ``mqtts://host:port``."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, username: str, password: str, where: str) -> BrokerConfig:
        """Parse ``mqtt://host[:port]`` (port 1883) or ``mqtts://host[:port]`` (8883)."""
        parsed = urlparse(url)
        scheme = _BROKER_SCHEMES.get(parsed.scheme)
        try:
            port = parsed.port
        except ValueError:
            port = -1
        if scheme is None or not parsed.hostname or port == -1 or parsed.path not in ("", "/"):
            raise ConfigError(
                f"{where}: broker.url must look like mqtt://host[:port] or mqtts://host[:port], "
                f"got {url!r}"
            )
        tls, default_port = scheme
        return cls(parsed.hostname, port or default_port, username, password, tls=tls)


@dataclass(frozen=True)
class HubConfig:
    hub_id: str
    broker: BrokerConfig
    database_url: str
    http_host: str
    http_port: int
    public_url: str
    api_token: str
    data_dir: Path
    lease_s: float
    offer_timeout_s: float
    max_attempts: int
    sweep_interval_s: float
    slicer: str
    machine_slicers: dict[str, str] = field(default_factory=dict)  # "<agent>/<machine>" -> name
    http_threads: int = DEFAULT_HTTP_THREADS  # at most half of them serve live pages
    max_machines_per_agent: int = 64  # more machine statuses from one agent are dropped
    max_consecutive_failures: int = 3  # a machine failing this often in a row is held
    # Scale-out (issue 9): where G-code files live (a folder every hub process reaches;
    # None: <data_dir>/artifacts) and the one-task token secret ("" = kept in the database)
    artifacts_dir: Path | None = None
    token_secret: str = ""
    economy: Terms = field(default_factory=Terms)  # [economy], issue 11
    # a --role dispatcher process's /healthz, /readyz and /metrics (0: a free port, printed)
    health_port: int = 0
    federation: FederationConfig | None = None  # [federation], issue 12 (always set by load)


@dataclass(frozen=True)
class MachinePolicy:
    """What a maker accepts on one machine."""

    materials: tuple[str, ...]
    max_task_hours: float
    auto_accept: bool
    windows: tuple[str, ...] = ()


@dataclass(frozen=True)
class MachineConfig:
    machine_id: str
    profile: str
    driver: str
    material: str
    policy: MachinePolicy
    driver_options: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    broker: BrokerConfig
    hub_url: str
    data_dir: Path
    machines: tuple[MachineConfig, ...]


def _load(path: Path, keys: Mapping[str, frozenset[str]]) -> TableReader:
    """The file's root table with the ``FABNET_*`` overrides of ``keys`` put in."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"no such config file: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    apply_env(data, keys, os.environ)
    return TableReader(data, path, "")


def _broker(table: TableReader, default_username: str, *, hub: bool) -> BrokerConfig:
    """``[broker]`` of a hub (``hub``: with ``password_file`` and ``accounts``) or an agent."""
    config = BrokerConfig.from_url(
        table.text("url", DEFAULT_BROKER_URL),
        table.text("username", default_username),
        secret(table, "password", HUB_PASSWORD_HINT if hub else AGENT_PASSWORD_HINT),
        str(table.file),
    )
    ca_file = table.path("ca_file", "")
    if ca_file is not None and not config.tls:
        raise ConfigError(
            f"{table.file}: broker.ca_file is set but broker.url {config.url} is not mqtts://"
        )
    config = replace(config, ca_file=ca_file)
    if hub:
        config = replace(
            config,
            password_file=table.path("password_file", ""),
            accounts=table.text("accounts", "dynsec", choices=BROKER_ACCOUNTS),
        )
    return config


def _database_url(table: TableReader) -> str:
    """``[database] url``, with the file of a ``sqlite:///relative.db`` URL made absolute."""
    url = table.text("url", DEFAULT_DATABASE_URL)
    match = _SQLITE_RELATIVE.match(url)
    if match is None:
        return url
    prefix, file, query = match.group("prefix", "file", "query")
    absolute = (table.folder_for(url) / file).resolve()
    return f"{prefix}{absolute.as_posix()}{query or ''}"


def load_hub_config(path: Path) -> HubConfig:
    """Read a hub's TOML file; relative paths in it are taken against its folder."""
    root = _load(path, HUB_KEYS)
    hub, broker, db, http, economy, federation = (
        root.table(t, optional=True)
        for t in ("hub", "broker", "database", "http", "economy", "federation")
    )
    data_dir = hub.path("data_dir", "var")
    assert data_dir is not None
    config = HubConfig(
        hub_id=_id(hub, "hub"),
        broker=_broker(broker, "hub", hub=True),
        database_url=_database_url(db),
        http_host=http.text("host", "127.0.0.1"),
        http_port=http.integer("port", 1, 65535, 5000),
        public_url=http.text("public_url", ""),
        api_token=secret(http, "api_token", API_TOKEN_HINT),
        data_dir=data_dir,
        lease_s=hub.number("lease_s", 5, 86400, 120),
        offer_timeout_s=hub.number("offer_timeout_s", 1, 86400, 60),
        max_attempts=hub.integer("max_attempts", 1, 20, 3),
        sweep_interval_s=hub.number("sweep_interval_s", 0.2, 600, 5),
        slicer=hub.text("slicer", "builtin", choices=SLICER_CHOICES),
        machine_slicers=_machine_slicers(root),
        http_threads=http.integer("threads", 4, 256, DEFAULT_HTTP_THREADS),
        max_machines_per_agent=hub.integer("max_machines_per_agent", 1, 10_000, 64),
        max_consecutive_failures=hub.integer("max_consecutive_failures", 1, 1000, 3),
        artifacts_dir=hub.path("artifacts_dir", ""),
        token_secret=_token_secret(hub),
        health_port=http.integer("health_port", 0, 65535, 0),
        economy=economy_terms(economy),
    )
    config = replace(config, federation=federation_config(federation, config.hub_id, data_dir))
    for table in (hub, broker, db, http, economy, federation, root):
        table.finish()
    return config


MIN_TOKEN_SECRET = 32


def _token_secret(hub: TableReader) -> str:
    """``[hub] token_secret``: "" (the database keeps one) or at least 32 characters."""
    value = hub.text("token_secret", "")
    if value and len(value) < MIN_TOKEN_SECRET:
        raise ConfigError(
            f"[hub] token_secret must be empty or at least {MIN_TOKEN_SECRET} characters, "
            f"got {len(value)}"
        )
    return str(value)


def _machine_slicers(root: TableReader) -> dict[str, str]:
    """``[slicers]``: a slicer per machine (``"ada/mk3s-1" = "prusaslicer"``), over the hub's."""
    if not root.has("slicers"):
        return {}
    table = root.table("slicers")
    chosen = {key: table.text(key, choices=SLICER_CHOICES) for key in table.keys()}
    table.finish()
    return chosen


def load_agent_config(path: Path) -> AgentConfig:
    """Read an agent's TOML file; relative paths in it are taken against its folder."""
    root = _load(path, AGENT_KEYS)
    agent, broker = (root.table(t, optional=True) for t in ("agent", "broker"))
    agent_id = _id(agent)
    machines = tuple(_machine(t) for t in root.tables("machines"))
    if not machines:
        raise ConfigError(f"{path}: an agent needs at least one [[machines]] entry")
    ids = [m.machine_id for m in machines]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: machine ids must be unique, got {ids}")
    data_dir = agent.path("data_dir", "var/agent")
    assert data_dir is not None
    config = AgentConfig(
        agent_id=agent_id,
        broker=_broker(broker, agent_id, hub=False),
        hub_url=agent.text("hub_url", "http://127.0.0.1:5000"),
        data_dir=data_dir,
        machines=machines,
    )
    for table in (agent, broker, root):
        table.finish()
    return config


def _machine(t: TableReader) -> MachineConfig:
    """One ``[[machines]]`` entry, with canonical names and checked driver options."""
    policy = t.table("policy")
    machine_id = _id(t)
    driver = t.text("driver", choices=tuple(DRIVER_OPTIONS))
    config = MachineConfig(
        machine_id=machine_id,
        profile=_profile(t),
        driver=driver,
        material=_material(t, "material"),
        policy=MachinePolicy(
            materials=tuple(
                canonical_value(policy, "materials", canonical_material, m)
                for m in policy.strings("materials")
            ),
            max_task_hours=policy.number("max_task_hours", 0.01, 1000, 24),
            auto_accept=policy.boolean("auto_accept", True),
            windows=policy.strings("windows", []),
        ),
        driver_options=_driver_options(t, machine_id, driver),
    )
    policy.finish()
    t.finish()
    return config


def _id(t: TableReader, default: str | None = None) -> str:
    """An ``id`` key: it names MQTT topics and broker accounts, so it is checked as they are."""
    return canonical_value(t, "id", check_id, t.text("id", default))


def _material(t: TableReader, key: str) -> str:
    return canonical_value(t, key, canonical_material, t.text(key))


def _profile(t: TableReader) -> str:
    """A known profile id in its own spelling, or the absolute path of a profile file."""
    value = t.text("profile")
    if value.endswith(".toml"):
        return str(t.path("profile"))
    return canonical_value(t, "profile", canonical_profile, value)


def _driver_options(t: TableReader, machine_id: str, driver: str) -> dict[str, Scalar]:
    """``[machines.driver_options]`` checked against the driver's schema at load."""
    options: dict[str, Scalar] = {}
    if t.has("driver_options"):
        raw = t.table("driver_options")
        options = {key: raw.scalar(key) for key in raw.keys()}
        raw.finish()
    try:
        return check_driver_options(driver, options)
    except InvalidInput as exc:
        raise ConfigError(
            f"{t.file}: machine {machine_id!r} ({driver}) driver_options: {exc}"
        ) from None
