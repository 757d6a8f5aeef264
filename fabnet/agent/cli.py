"""``fabnet agent --config agent.toml``: run a maker's agent; and the commented example
configuration that ``fabnet init agent`` (in ``fabnet.hub.cli``) writes to start from."""

from __future__ import annotations

from pathlib import Path

import click

from fabnet.config import load_agent_config

EXAMPLE_AGENT_TOML = """\
# fabnet agent configuration: one maker, one or more machines.
# Run it with:  fabnet agent --config agent.toml
# Every key is checked at start; an unknown key is an error naming it.
# Relative paths are taken against this file's folder.
# FABNET_<TABLE>_<KEY> environment variables override keys of a table (e.g. FABNET_BROKER_URL,
# FABNET_AGENT_DATA_DIR); a relative path given that way is taken against the current folder.

[agent]
id = "alice"                       # your agent id = your broker username; letters, digits, _ -
hub_url = "http://127.0.0.1:5000"  # the hub; task files are fetched from this host only
data_dir = "var/agent"             # journal of results, pending offers, downloaded files

[broker]
url = "mqtt://127.0.0.1:1883"      # the hub operator tells you this
username = "alice"                 # defaults to [agent] id
password = "<set by registration>" # your broker password: registering the machine fills it in
                                   # (see README, "Run a real network"); the agent refuses to
                                   # start until then

# One [[machines]] table per machine.
[[machines]]
id = "mk3s-1"                      # unique within this agent
profile = "prusa_mk3s"             # see: fabnet profiles list
driver = "sim"                     # sim | octoprint | marlin | grbl
material = "PLA"                   # what is loaded right now (see: fabnet profiles materials)

[machines.policy]
materials = ["PLA", "PETG"]        # what you accept on this machine
max_task_hours = 8                 # decline tasks estimated to take longer
auto_accept = true                 # false: offers wait for your answer (dashboard)
windows = []                       # cron windows in local time, e.g. ["* 18-23 * * 1-5"]; [] = always

[machines.driver_options]          # passed to the driver; sim: speed, min_duration_s
speed = 60.0

# A printer on a serial port:
# [[machines]]
# id = "ender-1"
# profile = "creality_ender3"
# driver = "marlin"
# material = "PETG"
# [machines.policy]
# materials = ["PETG"]
# max_task_hours = 12
# auto_accept = false
# windows = ["* 8-20 * * *"]
# [machines.driver_options]
# port = "/dev/ttyUSB0"
# baud = 115200
"""


@click.command("agent")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("agent.toml"),
    show_default=True,
    help="The agent's TOML configuration (fabnet init agent writes one).",
)
@click.option(
    "--drain",
    is_flag=True,
    help="On Ctrl-C or SIGTERM, finish running tasks and take no new ones, then exit; a second "
    "signal stops at once. Without it a stop cancels running jobs (heaters off) and hands "
    "their tasks back to the hub.",
)
def agent_command(config_path: Path, drain: bool) -> None:
    """Run a maker's agent: take tasks from the hub and run them on this maker's machines."""
    from fabnet.roots.agent import run_agent

    config = load_agent_config(config_path)
    click.echo(
        f"agent {config.agent_id}: {len(config.machines)} machine(s), broker "
        f"{config.broker.host}:{config.broker.port}; Ctrl-C stops"
        + (" after running tasks finish (--drain)" if drain else ", leaving machines safe"),
        err=True,
    )
    run_agent(config, drain=drain)
