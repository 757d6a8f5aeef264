"""``fabnet demo``: the whole network on embedded defaults, with nothing else to set up.

It starts its own Mosquitto on a free port, a hub on SQLite in a temporary folder, and four
simulated makers with nine machines, submits jobs from the design library, and prints a live
one-line summary until Ctrl-C (or ``--duration``). ``--slice-only`` instead slices library
designs for several machines and prints the G-code analysis, without any network.
"""

from __future__ import annotations

import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import click

from fabnet.core.ledger import LedgerKey
from fabnet.hub.service import JobRequest

# (design slug, material, quantity): what the demo's requesters ask for.
DEMO_JOBS: tuple[tuple[str, str, int], ...] = (
    ("cube-xyz-20mm", "PLA", 6),
    ("extruder-idler", "PETG", 3),
    ("torture-test-v2", "PLA", 2),
    ("faceshield-frame-short", "PLA", 2),
    ("faceshield-frame", "plywood", 2),
)

# (design slug, profile id, material, quantity) for --slice-only.
SLICE_RUNS: tuple[tuple[str, str, str, int], ...] = (
    ("cube-xyz-20mm", "prusa_mk3s", "PLA", 4),
    ("extruder-idler", "creality_ender3", "PETG", 1),
    ("faceshield-frame", "shapeoko3", "plywood", 1),
)


def run_slicing_demo(out_dir: Path) -> list[str]:
    """Slice each run into ``out_dir``; returns one summary line per run."""
    from fabnet.gcode import analyse, check
    from fabnet.library.design import load_design
    from fabnet.library.mesh import load_mesh, prepare_mesh
    from fabnet.profiles import FdmMaterial, load_materials, load_profile
    from fabnet.slicing.base import SliceSettings
    from fabnet.slicing.registry import slicer_for

    lines = []
    for slug, profile_id, material_name, quantity in SLICE_RUNS:
        profile = load_profile(profile_id)
        material = load_materials().get(material_name)
        prepared = prepare_mesh(load_mesh(load_design(slug).mesh_path), profile)
        result = slicer_for(profile).slice(
            prepared.mesh, profile, material, SliceSettings(quantity=quantity)
        )
        violations = check(result.gcode, profile)
        filament = material if isinstance(material, FdmMaterial) else None
        analysis = analyse(result.gcode, profile, filament)
        out = out_dir / f"{slug}.{profile_id}.gcode"
        out.write_text(result.gcode)
        lines.append(
            f"{slug} x{quantity} on {profile.name} in {material.name}: "
            f"{analysis.layers} layers, {analysis.time_s / 60:.1f} min, "
            f"{analysis.filament_mm / 1000:.2f} m, {analysis.grams:.1f} g, "
            f"safety: {'ok' if not violations else f'{len(violations)} violations'} -> {out}"
        )
    return lines


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``port`` can be bound on ``host`` now (nobody listens on it)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def pick_http_port(asked: int) -> int:
    """``asked`` if it is free, else a free port the kernel picks (the help promises one)."""
    from fabnet.bus.broker import free_port

    if _port_free(asked):
        return asked
    chosen = free_port()
    click.echo(f"port {asked} is taken; the dashboard uses port {chosen} instead")
    return chosen


def summary_line(network: object) -> str:
    """Tasks by state, grams by material and machines by state, in one line."""
    from fabnet.roots.network import SimNetwork

    assert isinstance(network, SimNetwork) and network.hub is not None
    store = network.hub.store
    tasks: Counter[str] = Counter()
    for job in store.jobs.find(limit=1000):
        for state, n in job.tasks_by_state.items():
            tasks[state.value] += n
    grams = store.ledger_totals(LedgerKey.MATERIAL)
    machines = Counter(m.state.value for m in store.catalog.list_machines())
    order = ("queued", "offered", "claimed", "preparing", "running", "done", "failed", "cancelled")
    task_text = " ".join(f"{s} {tasks[s]}" for s in order if tasks[s])
    gram_text = " ".join(f"{k} {t.grams:.0f} g" for k, t in sorted(grams.items())) or "-"
    machine_text = " ".join(f"{k} {n}" for k, n in sorted(machines.items()))
    return f"tasks: {task_text} | made: {gram_text} | machines: {machine_text}"


def _demo_users(network: object) -> str:
    """One account per role (and one per maker, owning its agent); returns their password."""
    import secrets
    from datetime import UTC, datetime

    from fabnet.roots.network import SimNetwork

    assert isinstance(network, SimNetwork) and network.hub is not None
    accounts = network.hub.store.accounts
    password = secrets.token_hex(6)
    now = datetime.now(UTC)
    accounts.add_user("operator", password, ["operator"], now)
    accounts.add_user("requester", password, ["requester"], now)
    for maker in network.makers:
        accounts.add_user(
            maker.agent_id, password, ["maker", "requester"], now, maker_ids=[maker.agent_id]
        )
    return password


def run_network_demo(root: Path, speed: float, port: int, duration_s: float | None) -> None:
    from fabnet.roots.network import SimNetwork

    # SIGTERM stops the demo as Ctrl-C does: agents make their machines safe, then the hub and
    # the broker stop. Any other death takes the broker with it (fabnet.lifetime).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    network = SimNetwork(root, speed=speed, http_port=pick_http_port(port))
    click.echo(f"fabnet demo: data in {root}")
    try:
        network.start()
        assert network.hub is not None and network.hub.service is not None
        assert network.files is not None and network.broker is not None
        click.echo(
            f"broker   {network.broker.url} (pid {network.broker.pid}; users: hub + "
            f"{len(network.agents)} makers)"
        )
        click.echo(f"hub API  {network.hub.public_url}/api/v1   token: {network.files.api_token}")
        click.echo(
            f"try:     fabnet jobs list --hub {network.hub.public_url} "
            f"--token {network.files.api_token}"
        )
        password = _demo_users(network)
        click.echo(
            f"dashboard {network.hub.public_url}/   log in as operator, requester, or a "
            f"maker (ada, bruno, chen, dana); password for all: {password}"
        )
        for slug, material, quantity in DEMO_JOBS:
            info = network.hub.service.submit(
                JobRequest(design=slug, quantity=quantity, material=material, requester="requester")
            )
            click.echo(f"submitted job {info.spec.job_id}: {quantity} x {slug} in {material}")
        _follow(network, duration_s)
    except KeyboardInterrupt:
        click.echo("\nstopping")
    finally:
        network.stop()
        signal.signal(signal.SIGTERM, previous)
        click.echo("demo stopped: broker, hub and makers are down")


def _follow(network: object, duration_s: float | None) -> None:
    started = time.monotonic()
    tty = sys.stdout.isatty()
    last_print = 0.0
    while duration_s is None or time.monotonic() - started < duration_s:
        line = summary_line(network)
        now = time.monotonic()
        if tty:
            click.echo("\r" + line.ljust(150)[:200], nl=False)
        elif now - last_print >= 5.0:
            click.echo(line)
            last_print = now
        time.sleep(1.0)
    click.echo("\n" + summary_line(network))


@click.command("demo")
@click.option("--slice-only", is_flag=True, help="Only slice designs and print the analysis.")
@click.option("--speed", default=120.0, show_default=True, help="Simulated machines' speed-up.")
@click.option(
    "--port", default=5000, show_default=True, help="HTTP port (a free one if it is taken)."
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path),
    default=None,
    help="Data folder (default: a new temporary folder).",
)
def demo_command(
    slice_only: bool, speed: float, port: int, duration: float | None, root: Path | None
) -> None:
    """Run a hub, its own broker and simulated makers on embedded defaults; Ctrl-C stops."""
    folder = root or Path(tempfile.mkdtemp(prefix="fabnet-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    if slice_only:
        for line in run_slicing_demo(folder):
            click.echo(line)
        return
    run_network_demo(folder, speed, port, duration)
