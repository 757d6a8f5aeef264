"""``fabnet sim marlin|grbl``: run a firmware simulator on a pty and print its device path."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from fabnet.sim.pty_link import SerialFirmware


def _serve(firmware: SerialFirmware) -> None:
    """Start ``firmware``, print its path, run until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    path = firmware.start()
    click.echo(path)
    click.echo(f"{type(firmware).__name__} on {path}; Ctrl-C to stop", err=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        firmware.close()
        signal.signal(signal.SIGTERM, previous)
        click.echo("simulator stopped", err=True)


@click.group()
def sim() -> None:
    """Firmware simulators behind a pseudo-terminal (open the printed path with any host)."""


@sim.command("marlin")
@click.option("--baud", type=int, default=115200, show_default=True, help="link speed, bit/s")
@click.option("--speed", type=float, default=1.0, show_default=True, help="time scale")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="corrupt:N lose:N nochecksum:N noline:N drop-ok:N busy:N:SECONDS silent:N reset:N "
    "halt:N runaway:N mintemp:N maxtemp:N heatfail:N (repeatable)",
)
@click.option(
    "--dialect",
    type=click.Choice(["marlin", "prusa", "repetier", "smoothie", "rrf"]),
    default="marlin",
    show_default=True,
    help="whose words the firmware speaks (errors, resend requests, M115)",
)
@click.option(
    "--busy-at-start",
    type=float,
    default=0.0,
    show_default=True,
    help="seconds the board is busy with a previous host's command when this one connects",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="keep the printer's state in this JSON file (fields below)",
)
def marlin(
    baud: int,
    speed: float,
    faults: tuple[str, ...],
    dialect: str,
    busy_at_start: float,
    state_file: Path | None,
) -> None:
    """A Marlin-family firmware (line numbers, checksums, ADVANCED_OK, heaters) speaking the
    words of Marlin 2, Prusa, Repetier, Smoothieware or RepRapFirmware (--dialect).

    \b
    --state-file PATH is replaced atomically a few times a second while the state changes,
    and at once when a heater target changes or a file ends. Its JSON fields:
      hotend_c, hotend_target_c, bed_c, bed_target_c   °C, actual and target (0 = off)
      fan (0..255), steppers_on (true/false)
      lines_executed     commands run since the simulator started
      files_completed    files run to their end: each M400 (finish moves) that completes;
                         fabnet's Marlin driver sends one after a file's last line, and none
                         when it cancels
      busy               commands buffered or moves planned
      halted             the firmware halted (M112, a fault)
      updated_at         Unix time of the snapshot, s
    """
    from fabnet.sim.marlin import MarlinSimulator
    from fabnet.sim.marlin_faults import FaultPlan

    plan = FaultPlan.parse(faults)
    _serve(
        MarlinSimulator(
            baud=baud,
            speed=speed,
            faults=plan,
            state_file=state_file,
            dialect=dialect,
            busy_at_start_s=busy_at_start,
        )
    )


@sim.command("grbl")
@click.option("--baud", type=int, default=115200, show_default=True, help="link speed, bit/s")
@click.option("--speed", type=float, default=1.0, show_default=True, help="time scale")
@click.option("--fault", "faults", multiple=True, help="e.g. error:20@5 alarm:1@40 (repeatable)")
def grbl(baud: int, speed: float, faults: tuple[str, ...]) -> None:
    """A GRBL 1.1 firmware (character counting, realtime commands, alarms)."""
    from fabnet.sim.grbl import GrblSimulator

    _serve(GrblSimulator(baud=baud, speed=speed, faults=",".join(faults) or None))
