"""``fabnet print FILE``: safety-check a G-code file against a profile, then run it on a machine
through a driver, with a progress bar; Ctrl-C or SIGTERM cancels and leaves the machine safe."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from fabnet.drivers.base import Driver, DriverState
from fabnet.drivers.registry import make_driver
from fabnet.errors import DeviceError, InvalidInput

POLL_S = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _driver_options(
    driver: str, url: str | None, api_key: str | None, port: str | None, baud: int | None
) -> dict[str, Any]:
    if driver == "octoprint":
        if not url:
            raise InvalidInput("--url is required with --driver octoprint")
        return {"url": url, "api_key": api_key}
    if driver in ("marlin", "grbl"):
        if not port:
            raise InvalidInput(f"--port is required with --driver {driver}")
        return {"port": port, "baud": baud}
    return {}


def _safety_check(gcode_file: Path, profile_id: str | None, unchecked: bool) -> float | None:
    """Run the safety check; returns the profile's Z travel (mm) when it has one."""
    if profile_id is None:
        if not unchecked:
            raise InvalidInput("--profile is required for the safety check (or pass --unchecked)")
        click.echo("warning: no profile given, safety check skipped", err=True)
        return None
    from fabnet.gcode import assert_safe
    from fabnet.profiles import load_profile

    profile = load_profile(profile_id)
    assert_safe(gcode_file, profile)
    click.echo(f"safety check passed for {profile_id}", err=True)
    return float(profile.volume.z_mm)


def _follow(machine: Driver) -> None:
    """Show progress until the job ends; raises DeviceError if the machine reports one."""
    status = machine.status()
    with click.progressbar(length=max(status.progress.bytes_total, 1), label="printing") as bar:
        shown = 0
        while True:
            status = machine.status()
            done = status.progress.bytes_done
            bar.update(done - shown)
            shown = done
            if status.state not in (DriverState.RUNNING, DriverState.PAUSED):
                break
            time.sleep(POLL_S)
    if status.state == DriverState.ERROR:
        error = status.error
        raise DeviceError(
            error.message if error else "the machine reported an error",
            raw=error.raw if error else None,
        )


@click.command("print")
@click.argument("gcode_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--driver", type=click.Choice(["octoprint", "marlin", "grbl", "sim"]), required=True)
@click.option("--url", help="OctoPrint base URL, e.g. http://octopi.local")
@click.option("--api-key", help="OctoPrint API key")
@click.option("--port", help="serial device, e.g. /dev/ttyUSB0")
@click.option("--baud", type=int, help="serial speed in bit/s (default 115200)")
@click.option("--profile", "profile_id", help="firmware profile for the safety check")
@click.option("--unchecked", is_flag=True, help="skip the safety check (no profile)")
def print_command(
    gcode_file: Path,
    driver: str,
    url: str | None,
    api_key: str | None,
    port: str | None,
    baud: int | None,
    profile_id: str | None,
    unchecked: bool,
) -> None:
    """Run GCODE_FILE on a machine. Ctrl-C or SIGTERM cancels the job and leaves the machine
    safe (heaters and fan off, Z lifted, motors off)."""
    max_z_mm = _safety_check(gcode_file, profile_id, unchecked)
    options = _driver_options(driver, url, api_key, port, baud)
    if driver == "marlin":
        options["max_z_mm"] = max_z_mm
    machine = make_driver(driver, **options)
    stopped_by: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped_by.append(signum)
        raise KeyboardInterrupt  # SIGTERM takes Ctrl-C's path: cancel, machine left safe

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        machine.connect()
        try:
            machine.start(gcode_file)
            _follow(machine)
        except KeyboardInterrupt:
            _cancel(machine)
            # SystemExit, not click's Exit: ``fabnet.cli.main`` runs click with
            # standalone_mode=False, where an Exit's code is returned and dropped
            raise SystemExit(128 + (stopped_by or [signal.SIGINT])[0]) from None
        click.echo(f"done: {gcode_file.name}")
    finally:
        machine.disconnect()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _cancel(machine: Driver) -> None:
    """Stop the job and make the machine safe; further signals wait (a half-done cancel could
    leave the heaters on)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    click.echo("\ncancelling: stopping the job and making the machine safe…", err=True)
    machine.cancel()
    click.echo("cancelled; machine left safe", err=True)
