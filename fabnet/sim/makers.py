"""The simulated makers of ``fabnet demo`` (and the network tests): who owns which machine,
what is loaded, and what each maker accepts. Written out as real agent.toml / hub.toml files
so the demo runs exactly what a volunteer would run."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SimMachine:
    machine_id: str
    profile: str
    material: str
    accepts: tuple[str, ...]
    max_task_hours: float = 24.0
    windows: tuple[str, ...] = ()
    auto_accept: bool = True


@dataclass(frozen=True)
class SimMaker:
    agent_id: str
    machines: tuple[SimMachine, ...]


# Four makers, nine machines: FDM of three sizes and a CNC router; one machine takes only PETG;
# one is available only in even minutes (a cron window), so the demo shows it come and go.
DEMO_MAKERS: tuple[SimMaker, ...] = (
    SimMaker(
        "ada",
        (
            SimMachine("mk3s-1", "prusa_mk3s", "PLA", ("PLA", "PETG")),
            SimMachine("mini-1", "prusa_mini", "PLA", ("PLA",), max_task_hours=6),
        ),
    ),
    SimMaker(
        "bruno",
        (
            SimMachine("ender3-petg", "creality_ender3", "PETG", ("PETG",)),
            SimMachine("ender3-1", "creality_ender3", "PLA", ("PLA",)),
        ),
    ),
    SimMaker(
        "chen",
        (
            SimMachine("voron-1", "voron24_350", "PLA", ("PLA", "ABS", "PETG")),
            SimMachine("mk3s-evenings", "prusa_mk3s", "PLA", ("PLA",), windows=("*/2 * * * *",)),
        ),
    ),
    SimMaker(
        "dana",
        (
            SimMachine("shapeoko-ply", "shapeoko3", "plywood", ("plywood",)),
            SimMachine("shapeoko-mdf", "shapeoko3", "mdf", ("mdf", "plywood")),
            SimMachine("mini-2", "prusa_mini", "PETG", ("PETG",)),
        ),
    ),
)


@dataclass(frozen=True)
class NetworkFiles:
    """Paths and secrets of a generated network: broker users, hub and agent configs."""

    root: Path
    users: dict[str, str]
    hub_config: Path
    agent_configs: dict[str, Path]
    api_token: str


def write_network(
    root: Path,
    broker_port: int,
    makers: tuple[SimMaker, ...] = DEMO_MAKERS,
    *,
    http_port: int = 0,
    speed: float = 120.0,
    lease_s: float = 30.0,
    offer_timeout_s: float = 10.0,
    sweep_interval_s: float = 0.5,
    database_url: str | None = None,
) -> NetworkFiles:
    """Write hub.toml and one agent-<id>.toml per maker under ``root`` with fresh passwords."""
    root.mkdir(parents=True, exist_ok=True)
    users = {"hub": secrets.token_urlsafe(16)}
    users.update({m.agent_id: secrets.token_urlsafe(16) for m in makers})
    token = "fab_" + secrets.token_hex(20)  # no leading "-": it is passed on command lines
    db = database_url or f"sqlite:///{root / 'hub' / 'fabnet.db'}"
    (root / "hub").mkdir(exist_ok=True)
    hub = root / "hub.toml"
    hub.write_text(f'''[hub]
id = "demo-hub"
data_dir = "{root / "hub"}"
lease_s = {lease_s}
offer_timeout_s = {offer_timeout_s}
max_attempts = 5
sweep_interval_s = {sweep_interval_s}

[broker]
url = "mqtt://127.0.0.1:{broker_port}"
username = "hub"
password = "{users["hub"]}"

[database]
url = "{db}"

[http]
host = "127.0.0.1"
port = {http_port}
api_token = "{token}"
''')
    agents = {}
    for maker in makers:
        path = root / f"agent-{maker.agent_id}.toml"
        path.write_text(_agent_toml(root, maker, broker_port, users[maker.agent_id], speed))
        agents[maker.agent_id] = path
    return NetworkFiles(root, users, hub, agents, token)


def _agent_toml(root: Path, maker: SimMaker, port: int, password: str, speed: float) -> str:
    parts = [
        f'''[agent]
id = "{maker.agent_id}"
hub_url = "http://127.0.0.1"
data_dir = "{root / "agents" / maker.agent_id}"

[broker]
url = "mqtt://127.0.0.1:{port}"
password = "{password}"
'''
    ]
    for m in maker.machines:
        accepts = ", ".join(f'"{a}"' for a in m.accepts)
        windows = ", ".join(f'"{w}"' for w in m.windows)
        parts.append(f'''
[[machines]]
id = "{m.machine_id}"
profile = "{m.profile}"
driver = "sim"
material = "{m.material}"

[machines.driver_options]
speed = {speed}

[machines.policy]
materials = [{accepts}]
max_task_hours = {m.max_task_hours}
auto_accept = {str(m.auto_accept).lower()}
windows = [{windows}]
''')
    return "".join(parts)
