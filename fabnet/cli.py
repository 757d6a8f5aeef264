"""The ``fabnet`` command line: one root group; each topic's commands live beside its code.

Subcommands are imported only when used, so ``fabnet gcode check`` does not pay for trimesh.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from fabnet import __version__
from fabnet.errors import FabnetError

# command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "profiles": "fabnet.profiles.cli:profiles",
    "designs": "fabnet.library.cli:designs",
    "slice": "fabnet.slicing.cli:slice_command",
    "gcode": "fabnet.gcode.cli:gcode",
    "print": "fabnet.drivers.cli:print_command",
    "sim": "fabnet.sim.cli:sim",
    "demo": "fabnet.roots.demo:demo_command",
    "hub": "fabnet.hub.cli:hub_command",
    "agent": "fabnet.agent.cli:agent_command",
    "init": "fabnet.hub.cli:init",
    "submit": "fabnet.hub.cli:submit_command",
    "quote": "fabnet.hub.economy.cli:quote_command",
    "ledger": "fabnet.hub.economy.export_cli:ledger",
    "jobs": "fabnet.hub.cli:jobs",
    "broker-config": "fabnet.bus.cli:broker_config_command",
    "users": "fabnet.hub.users_cli:users",
    "machines": "fabnet.hub.machines_cli:machines",
    "peers": "fabnet.federation.cli:peers",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="fabnet")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """fabnet: peer production of physical things on volunteers' machines."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # werkzeug logs every request at INFO on its own; only -vv shows them
    logging.getLogger("werkzeug").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def main() -> None:
    """Console entry point: fabnet's own errors become one clear line and exit status 2."""
    try:
        # without standalone mode click returns a command's ctx.exit(code) instead of exiting
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except FabnetError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
