"""Command line of the hub and of requesters: ``fabnet hub``, ``submit``, ``jobs``, ``init``."""

from __future__ import annotations

import os
import secrets
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from fabnet.config import load_hub_config
from fabnet.hub.rest_client import HubClient

HUB_URL = click.option(
    "--hub",
    "hub_url",
    envvar="FABNET_HUB_URL",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="The hub's base URL.",
)
TOKEN = click.option(
    "--token", envvar="FABNET_TOKEN", required=True, help="API token ($FABNET_TOKEN)."
)


ROLES = ("all", "api", "dispatcher")


@click.command("hub")
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="all",
    show_default=True,
    help="all: one process does everything (the only role on SQLite). api: HTTP only (REST "
    "API, dashboard, G-code downloads). dispatcher: agents' events, sweeps and offers, no "
    "HTTP. Run any number of api and dispatcher processes on one PostgreSQL and one broker.",
)
def hub_command(config_path: Path, role: str) -> None:
    """Run a hub process: REST API, scheduler and MQTT dispatcher, or one role of them."""
    from fabnet.roots.hub import run_hub
    from fabnet.roots.roles import Role

    run_hub(load_hub_config(config_path), Role(role))  # a ConfigError: one line, exit 2


@click.command("submit")
@click.argument("design")
@click.option("--quantity", type=int, required=True)
@click.option("--material", required=True)
@click.option("--quality", type=click.Choice(["draft", "normal", "fine"]), default="normal")
@click.option("--priority", type=int, default=0)
@click.option(
    "--deadline", default=None, help="ISO-8601 time with zone, e.g. 2026-12-24T12:00+00:00"
)
@click.option(
    "--requester",
    default=None,
    help="Submit for this user (operators only); default: the token's own user.",
)
@click.option(
    "--budget",
    default=None,
    help="Most the job may cost, in credits (e.g. 12.5): held from your credits at submit.",
)
@HUB_URL
@TOKEN
def submit_command(
    design: str,
    quantity: int,
    material: str,
    quality: str,
    priority: int,
    deadline: str | None,
    requester: str | None,
    budget: str | None,
    hub_url: str,
    token: str,
) -> None:
    """Ask the network for QUANTITY copies of DESIGN (a library slug or design id)."""
    body: dict[str, Any] = {
        "design": design,
        "quantity": quantity,
        "material": material,
        "quality": quality,
        "priority": priority,
        "deadline": deadline,
    }
    if requester is not None:
        body["requester"] = requester
    if budget is not None:
        body["budget_cap_mc"] = _milli_credits(budget)
    job = HubClient(hub_url, token).call("POST", "/jobs", body)
    click.echo(
        f"job {job['id']}: {job['quantity']} x {design} in {job['material']} ({job['state']})"
    )


def _milli_credits(text: str) -> int:
    """``--budget`` in credits, exactly (Decimal: no float rounding), as milli-credits."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise click.BadParameter(
            f"must be a number of credits, got {text!r}", param_hint="--budget"
        ) from None
    mc = value * 1000
    if not value.is_finite() or value <= 0 or mc != mc.to_integral_value():
        raise click.BadParameter(
            f"must be a positive number of credits with at most 3 decimals, got {text!r}",
            param_hint="--budget",
        )
    return int(mc)


@click.group("jobs")
def jobs() -> None:
    """List, show, follow and cancel jobs on a hub."""


@jobs.command("list")
@HUB_URL
@TOKEN
def jobs_list(hub_url: str, token: str) -> None:
    for job in HubClient(hub_url, token).call("GET", "/jobs"):
        click.echo(_job_line(job))


@jobs.command("show")
@click.argument("job_id")
@click.option("--follow", is_flag=True, help="Show a progress bar until the job ends.")
@HUB_URL
@TOKEN
def jobs_show(job_id: str, follow: bool, hub_url: str, token: str) -> None:
    client = HubClient(hub_url, token)
    job = client.call("GET", f"/jobs/{job_id}")
    click.echo(_job_line(job))
    if not follow:
        for task in job["task_list"]:
            click.echo(
                f"  {task['id']} {task['state']:<10} {task['machine'] or '-':<30} "
                f"{100 * task['progress']:5.1f} %"
            )
        return
    with click.progressbar(length=job["quantity"], label="parts done") as bar:
        done = 0
        while job["state"] not in ("done", "failed", "cancelled"):
            time.sleep(1.0)
            job = client.call("GET", f"/jobs/{job_id}")
            bar.update(job["done"] - done)
            done = job["done"]
    click.echo(_job_line(job))


@jobs.command("cancel")
@click.argument("job_id")
@HUB_URL
@TOKEN
def jobs_cancel(job_id: str, hub_url: str, token: str) -> None:
    click.echo(_job_line(HubClient(hub_url, token).call("POST", f"/jobs/{job_id}/cancel")))


def _job_line(job: dict[str, Any]) -> str:
    tasks = " ".join(f"{k}:{v}" for k, v in sorted(job["tasks"].items()))
    return (
        f"{job['id']} {job['state']:<11} {job['done']}/{job['quantity']} "
        f"{job['material']:<8} [{tasks}]"
    )


HUB_EXAMPLE = """\
# fabnet hub configuration. Every key is checked; an unknown key is an error.
# Relative paths are taken against this file's folder.
# FABNET_<TABLE>_<KEY> environment variables override keys (FABNET_BROKER_URL,
# FABNET_DATABASE_URL, FABNET_HTTP_API_TOKEN, FABNET_HUB_DATA_DIR, ...); a relative path given
# that way is taken against the current folder. A misspelt FABNET_ variable is an error.

[hub]
id = "hub"                 # names this hub on the bus (fabnet/v1/hub/status)
data_dir = "var/hub"       # artifacts (G-code) and the token secret live here
lease_s = 120              # a claimed task returns to the queue this long after its last sign of life
offer_timeout_s = 60       # an unanswered offer lapses after this (10x for makers who decide by hand)
max_attempts = 3           # failed, expired or abandoned attempts before a task fails for good
sweep_interval_s = 2       # how often leases and offers are swept and queued work is offered
slicer = "builtin"         # builtin | prusaslicer | curaengine (CNC machines always get toolpaths)

[broker]
url = "mqtt://127.0.0.1:1883"   # or mqtts://host[:8883] for TLS
ca_file = ""               # mqtts only: the CA that signed the broker's certificate; "" = system CAs
username = "hub"
# Secret: the hub's own broker password (the broker must know it: fabnet broker-config).
password = "{broker_password}"
accounts = "dynsec"        # how registered agents get broker accounts: dynsec (Mosquitto's
                           # dynamic-security plugin, at run time) | file (rewrite password_file,
                           # then send Mosquitto SIGHUP) | none (record only)
password_file = ""         # accounts = "file": Mosquitto's password file

[database]
url = "sqlite:///var/fabnet.db"   # or postgresql+psycopg2://user:password@host/fabnet

[http]
host = "127.0.0.1"
port = 5000
public_url = ""            # how agents reach this hub; empty = http://host:port
threads = 8                # HTTP worker threads; half of them at most serve live dashboard pages
# Secret: the operator's API token, all rights over this hub (fabnet users, jobs, machines).
api_token = "{api_token}"

# A slicer per machine ("<agent>/<machine>"), over [hub] slicer; optional:
# [slicers]
# "ada/mk3s-1" = "prusaslicer"

# Sharing work with peer hubs (README "Federation"; peers are added with fabnet peers add);
# optional, these are the defaults:
# [federation]
# name = "hub"              # this hub's name among its peers (default: [hub] id)
# key_file = ""             # its Ed25519 key; "" = <data_dir>/federation/hub_ed25519.pem
# max_clock_skew_s = 300    # a signed request from a peer older or newer than this is refused
# tick_s = 5                # how often work is sent to peers and reported back
# advertise_every_s = 60    # how often this hub's capacity is sent to its peers
# capacity_max_age_s = 600  # a peer's capacity is believed this long
# overflow_after_s = 86400  # a task nobody here took within this may go to a peer
# peer_lease_s = 900        # a peer silent this long loses the task it holds
# transfer_timeout_s = 60   # a task offered to a peer returns to the queue if not taken by then
"""
SECRET_BYTES = 24  # secrets.token_urlsafe(24): 32 characters


def hub_example(broker_password: str, api_token: str) -> str:
    """HUB_EXAMPLE with its two secrets filled in."""
    return HUB_EXAMPLE.replace("{broker_password}", broker_password).replace(
        "{api_token}", api_token
    )


@click.group("init")
def init() -> None:
    """Write a commented example configuration."""


@init.command("hub")
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), default=Path("hub.toml"), show_default=True
)
def init_hub(out: Path) -> None:
    """Write an example hub.toml with freshly generated secrets."""
    _write_new(
        out,
        hub_example(secrets.token_urlsafe(SECRET_BYTES), secrets.token_urlsafe(SECRET_BYTES)),
    )
    click.echo(
        "its [broker] password and [http] api_token are new secrets: keep the file private; "
        "give the broker the hub's password with `fabnet broker-config`"
    )


@init.command("agent")
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), default=Path("agent.toml"), show_default=True
)
def init_agent(out: Path) -> None:
    """Write an example agent.toml; registering the machine fills in its broker password."""
    from fabnet.agent.cli import EXAMPLE_AGENT_TOML

    _write_new(out, EXAMPLE_AGENT_TOML)


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by its owner only: it holds (or will hold) secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; not overwriting it") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    click.echo(f"wrote {path}")
