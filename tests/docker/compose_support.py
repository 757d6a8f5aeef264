"""docker/compose.yaml read as Compose reads it: ``${VAR:?msg}``, ``${VAR:-default}`` and
``${VAR}`` taken from a stand-in ``.env`` (the variables docker/make-env.sh writes), ``$$``
left as one ``$`` for the container's shell, YAML merge keys applied."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"

# What docker/make-env.sh writes, with fixed stand-in values of the same shape.
DOT_ENV = {
    "POSTGRES_PASSWORD": "0f" * 24,
    "HUB_BROKER_PASSWORD": "1e" * 24,
    "SAMPLE_AGENT_PASSWORD": "2d" * 24,
    "API_TOKEN": "fab_" + "3c" * 24,
    "HUB_PUBLIC_URL": "http://hub:5000",
}

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's substitution of ``text``; a required variable missing from ``env`` raises."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        if env.get(name):
            return env[name]
        if op == ":-":
            return str(arg)
        raise AssertionError(f"compose needs ${{{name}}} ({arg or 'no message'}) from .env")

    return _VARIABLE.sub(one, text)


def _walk(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    return node


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file, interpolated with ``env`` (default: ``DOT_ENV``)."""
    raw = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(raw, dict), "compose.yaml is not a mapping"
    return dict(_walk(raw, DOT_ENV if env is None else env))


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose["services"]
    assert name in services, f"compose.yaml has no service {name!r}: {sorted(services)}"
    found: dict[str, Any] = services[name]
    return found


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict (mapping or ``KEY=VALUE`` list form)."""
    env = svc.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def bind_mounts(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host path, container path, options) of a service's ``./...`` volumes."""
    mounts = []
    for volume in svc.get("volumes", []):
        source, target, *options = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append((source, target, options[0] if options else ""))
    return mounts
