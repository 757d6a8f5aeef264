"""Hub and agent configuration: one TOML file, overridable by ``FABNET_*`` variables.

Everything is typed and range-checked at load and unknown keys are errors naming the key, so a
typo in a maker's agent.toml fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from fabnet.errors import ConfigError
from fabnet.profiles.reader import TableReader

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
DEFAULT_DATABASE_URL = "sqlite:///var/fabnet.db"
SLICER_CHOICES = ("builtin", "prusaslicer", "curaengine")


@dataclass(frozen=True)
class BrokerConfig:
    """Where the MQTT broker is and who we are to it."""

    host: str
    port: int
    username: str
    password: str
    password_file: Path | None = None  # the broker's password file the hub adds makers to

    @classmethod
    def from_url(cls, url: str, username: str, password: str, where: str) -> BrokerConfig:
        parsed = urlparse(url)
        if parsed.scheme != "mqtt" or not parsed.hostname:
            raise ConfigError(f"{where}: broker.url must look like mqtt://host:port, got {url!r}")
        return cls(parsed.hostname, parsed.port or 1883, username, password)


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
    driver_options: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    broker: BrokerConfig
    hub_url: str
    data_dir: Path
    machines: tuple[MachineConfig, ...]


def _load(path: Path) -> TableReader:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"no such config file: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    _apply_env(data)
    return TableReader(data, path, "")


def _apply_env(data: dict[str, object]) -> None:
    """``FABNET_BROKER_URL=mqtt://...`` overrides ``[broker] url``; one level of tables."""
    for name, value in os.environ.items():
        if not name.startswith("FABNET_") or name.count("_") < 2:
            continue
        section, _, key = name[len("FABNET_") :].lower().partition("_")
        table = data.get(section)
        if isinstance(table, dict) and key in table:
            current = table[key]
            table[key] = type(current)(value) if isinstance(current, int | float) else value


def load_hub_config(path: Path) -> HubConfig:
    root = _load(path)
    hub = root.table("hub")
    broker = root.table("broker")
    db = root.table("database")
    http = root.table("http")
    config = HubConfig(
        hub_id=hub.text("id", "hub"),
        broker=replace(
            BrokerConfig.from_url(
                broker.text("url", DEFAULT_BROKER_URL),
                broker.text("username", "hub"),
                broker.text("password"),
                str(path),
            ),
            password_file=Path(pf) if (pf := broker.text("password_file", "")) else None,
        ),
        database_url=db.text("url", DEFAULT_DATABASE_URL),
        http_host=http.text("host", "127.0.0.1"),
        http_port=http.integer("port", 1, 65535, 5000),
        public_url=http.text("public_url", ""),
        api_token=http.text("api_token"),
        data_dir=Path(hub.text("data_dir", "var")),
        lease_s=hub.number("lease_s", 5, 86400, 120),
        offer_timeout_s=hub.number("offer_timeout_s", 1, 86400, 60),
        max_attempts=hub.integer("max_attempts", 1, 20, 3),
        sweep_interval_s=hub.number("sweep_interval_s", 0.2, 600, 5),
        slicer=hub.text("slicer", "builtin", choices=SLICER_CHOICES),
        machine_slicers=_machine_slicers(root),
    )
    for table in (hub, broker, db, http, root):
        table.finish()
    return config


def _machine_slicers(root: TableReader) -> dict[str, str]:
    """``[slicers]``: a slicer per machine (``"ada/mk3s-1" = "prusaslicer"``), over the hub's."""
    if not root.has("slicers"):
        return {}
    table = root.table("slicers")
    chosen = {key: table.text(key, choices=SLICER_CHOICES) for key in table.keys()}
    table.finish()
    return chosen


def load_agent_config(path: Path) -> AgentConfig:
    root = _load(path)
    agent = root.table("agent")
    broker = root.table("broker")
    agent_id = agent.text("id")
    machines = tuple(_machine(t) for t in root.tables("machines"))
    if not machines:
        raise ConfigError(f"{path}: an agent needs at least one [[machines]] entry")
    ids = [m.machine_id for m in machines]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: machine ids must be unique, got {ids}")
    config = AgentConfig(
        agent_id=agent_id,
        broker=BrokerConfig.from_url(
            broker.text("url", DEFAULT_BROKER_URL),
            broker.text("username", agent_id),
            broker.text("password"),
            str(path),
        ),
        hub_url=agent.text("hub_url", "http://127.0.0.1:5000"),
        data_dir=Path(agent.text("data_dir", "var/agent")),
        machines=machines,
    )
    for table in (agent, broker, root):
        table.finish()
    return config


def _machine(t: TableReader) -> MachineConfig:
    policy = t.table("policy")
    options: dict[str, str | int | float | bool] = {}
    if t.has("driver_options"):
        raw = t.table("driver_options")
        for key in raw.keys():
            options[key] = raw.scalar(key)
    config = MachineConfig(
        machine_id=t.text("id"),
        profile=t.text("profile"),
        driver=t.text("driver", choices=("sim", "octoprint", "marlin", "grbl")),
        material=t.text("material"),
        policy=MachinePolicy(
            materials=policy.strings("materials"),
            max_task_hours=policy.number("max_task_hours", 0.01, 1000, 24),
            auto_accept=policy.boolean("auto_accept", True),
            windows=policy.strings("windows", []),
        ),
        driver_options=options,
    )
    policy.finish()
    t.finish()
    return config
