"""Small hub.toml / agent.toml writers for the config tests: only what a test varies is given."""

from __future__ import annotations

from pathlib import Path

HUB_SECRET = "hub-broker-secret-0123456789"
API_TOKEN = "operator-token-0123456789abcdef"
AGENT_SECRET = "alice-broker-secret-0123456789"


def hub_toml(
    folder: Path,
    *,
    hub: str = "",
    broker: str = "",
    database: str | None = "",
    http: str = "",
    name: str = "hub.toml",
) -> Path:
    """A hub config in ``folder``; the strings are extra lines for each table (a line that
    sets a key the default sets too replaces it). ``database=None`` leaves the table out."""
    tables = {
        "hub": _merge('id = "hub"', hub),
        "broker": _merge(f'url = "mqtt://127.0.0.1:1883"\npassword = "{HUB_SECRET}"', broker),
        "http": _merge(f'port = 5000\napi_token = "{API_TOKEN}"', http),
    }
    if database is not None:
        tables["database"] = database
    return _write(folder / name, tables)


def agent_toml(
    folder: Path,
    *,
    agent: str = "",
    broker: str = "",
    machine: str = "",
    policy: str = "",
    options: str | None = None,
    name: str = "agent.toml",
) -> Path:
    """An agent config with one sim machine ``m1``; extra lines per table as in ``hub_toml``."""
    tables = {
        "agent": _merge('id = "alice"', agent),
        "broker": _merge(f'password = "{AGENT_SECRET}"', broker),
        "[machines]": _merge(
            'id = "m1"\nprofile = "prusa_mk3s"\ndriver = "sim"\nmaterial = "PLA"', machine
        ),
        "machines.policy": _merge('materials = ["PLA"]', policy),
    }
    if options is not None:
        tables["machines.driver_options"] = options
    return _write(folder / name, tables)


def _merge(base: str, extra: str) -> str:
    """``base`` lines whose key ``extra`` does not set, then ``extra``."""
    given = {line.split("=")[0].strip() for line in extra.splitlines() if "=" in line}
    kept = [line for line in base.splitlines() if line.split("=")[0].strip() not in given]
    return "\n".join([*kept, extra]).strip()


def _write(path: Path, tables: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"[{name}]\n{body}\n\n" for name, body in tables.items()))
    return path
