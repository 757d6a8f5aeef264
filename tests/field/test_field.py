"""The README's "Run a real network", word for word, as its three people run it.

The installed ``fabnet`` command (a wheel in a fresh venv), from folders that are not the
checkout, with the files ``fabnet init hub|agent`` write and only the edits the README tells a
user to make: an operator starts Mosquitto (dynamic security), the hub and creates a maker and
a requester; the maker's printer is a ``fabnet sim marlin`` pseudo-terminal driven by the
Marlin driver, registered with ``fabnet machines register``; the requester submits 3 parts with
their own token and follows the job to done. Then the agent is stopped mid-print with SIGTERM:
the printer's heaters end at 0 and the task is back in the queue.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
import tomllib
from pathlib import Path
from typing import Any

from field_processes import api, free_port, processes, until, wait_healthy
from installed_support import InstalledFabnet

PASSWORD = "a long pass phrase for the field test"
SIM_BAUD = 1_000_000  # a pty paced like a USB link at Marlin's fastest common rate
SIM_SPEED = 400.0  # the simulator's time scale: a 16-minute cube takes a few seconds
FIELD_TIMEOUT_S = 240.0


def edit_toml(text: str, table: str, values: dict[str, Any], *, replace_body: bool = False) -> str:
    """What a user does in an editor: set ``key = value`` lines of ``[table]`` (the first
    such table; ``[[table]]`` too), or with ``replace_body`` put only these keys in it."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    assert start is not None, f"no [{table}] in the file fabnet init wrote:\n{text}"
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    body = [] if replace_body else lines[start + 1 : end]
    for key, value in values.items():
        setting = f"{key} = {json.dumps(value)}"
        at = next((i for i, line in enumerate(body) if re.match(rf"\s*{key}\s*=", line)), None)
        if at is None:
            body.append(setting)
        else:
            body[at] = setting
    return "\n".join([*lines[: start + 1], *body, *lines[end:]]) + "\n"


def _token(fabnet: InstalledFabnet, name: str, cwd: Path) -> str:
    """``fabnet users token NAME``: the token is its last line."""
    out = fabnet.run(["users", "token", name, "--config", "hub.toml"], cwd).stdout
    return out.strip().splitlines()[-1].strip()


def _sim_state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_a_real_network_as_the_readme_runs_it(
    installed_fabnet: InstalledFabnet, tmp_path: Path
) -> None:
    assert shutil.which("mosquitto"), "install mosquitto (`make test` does: apt-get install)"
    fabnet, env = installed_fabnet, installed_fabnet.env
    began = time.monotonic()
    op, maker, req = (tmp_path / d for d in ("operator", "maker", "requester"))
    for folder in (op, maker, req):
        folder.mkdir()
    broker_port, http_port = free_port(), free_port()
    hub_url = f"http://127.0.0.1:{http_port}"

    with processes() as start:
        # -- the operator --------------------------------------------------------------------
        fabnet.run(["init", "hub"], op)
        hub_toml = op / "hub.toml"
        text = hub_toml.read_text()
        # the README: "if 1883 or 5000 are taken, pick other ports here"
        text = edit_toml(text, "broker", {"url": f"mqtt://127.0.0.1:{broker_port}"})
        text = edit_toml(text, "http", {"port": http_port})
        hub_toml.write_text(text)
        fabnet.run(["broker-config", "--dynsec", "--config", "hub.toml", "--out", "broker"], op)
        broker = start("mosquitto", ["mosquitto", "-c", "broker/mosquitto.conf"], op, env)
        hub = start("hub", [fabnet.fabnet, "hub", "--config", "hub.toml"], op, env)
        wait_healthy(hub_url, hub, 60)
        for name, role in (("ada", "maker"), ("rita", "requester")):
            extra = ["--maker-id", "ada"] if role == "maker" else []
            fabnet.run(["users", "add", name, "--role", role, *extra, "--password", PASSWORD,
                        "--config", "hub.toml"], op)  # fmt: skip
        maker_token, requester_token = _token(fabnet, "ada", op), _token(fabnet, "rita", op)
        operator_token = tomllib.loads(hub_toml.read_text())["http"]["api_token"]

        # -- the maker: a printer (here the simulator) on a serial port ----------------------
        sim = start("sim", [fabnet.fabnet, "sim", "marlin", "--baud", str(SIM_BAUD), "--speed",
                            str(SIM_SPEED), "--state-file", "sim.json"], maker, env)  # fmt: skip
        port = sim.wait_line(lambda line: line.startswith("/dev/"), 20).strip()
        fabnet.run(["init", "agent"], maker)
        agent_toml = maker / "agent.toml"
        text = agent_toml.read_text()
        text = edit_toml(text, "agent", {"id": "ada", "hub_url": hub_url})
        text = edit_toml(
            text, "broker", {"url": f"mqtt://127.0.0.1:{broker_port}", "username": "ada"}
        )
        text = edit_toml(text, "machines", {"driver": "marlin", "material": "PLA"})
        text = edit_toml(
            text, "machines.driver_options", {"port": port, "baud": SIM_BAUD}, replace_body=True
        )
        agent_toml.write_text(text)
        fabnet.run(["machines", "register", "--config", "agent.toml", "--hub", hub_url,
                    "--token", maker_token], maker)  # fmt: skip
        agent = start("agent", [fabnet.fabnet, "agent", "--config", "agent.toml"], maker, env)

        # -- the requester -------------------------------------------------------------------
        hub_args = ["--hub", hub_url, "--token", requester_token]
        out = fabnet.run(["submit", "cube-xyz-20mm", "--quantity", "3", "--material", "PLA",
                          *hub_args], req).stdout  # fmt: skip
        job_id = re.search(r"job (\w+):", out)
        assert job_id, out
        followed = fabnet.run(
            ["jobs", "show", job_id.group(1), "--follow", *hub_args], req, timeout=FIELD_TIMEOUT_S
        ).stdout
        assert " done " in followed.splitlines()[-1] and " 3/3 " in followed, followed
        state = until(
            lambda: (s := _sim_state(maker / "sim.json")).get("files_completed") == 3 and s,
            20, "the simulator ran three files to their end",
        )  # fmt: skip
        totals = until(
            lambda: api(hub_url, operator_token, "GET", "/ledger/totals?by=material"),
            20, "the ledger has entries",
        )  # fmt: skip
        assert totals["PLA"]["tasks"] == 3 and totals["PLA"]["parts"] == 3, totals

        # -- the maker stops the agent mid-print ---------------------------------------------
        out = fabnet.run(["submit", "cube-xyz-20mm", "--quantity", "1", "--material", "PLA",
                          *hub_args], req).stdout  # fmt: skip
        second = re.search(r"job (\w+):", out)
        assert second, out
        lines_before = state["lines_executed"]

        def printing() -> bool:
            job = api(hub_url, requester_token, "GET", f"/jobs/{second.group(1)}")
            now = _sim_state(maker / "sim.json")
            running = job["task_list"][0]["state"] == "running"
            return running and now.get("lines_executed", 0) > lines_before + 200

        until(printing, 120, "the fourth part is printing")
        agent.signal(signal.SIGTERM)
        assert agent.wait(30) == 0, agent.output()
        after = until(
            lambda: (s := _sim_state(maker / "sim.json")).get("hotend_target_c") == 0
            and s.get("bed_target_c") == 0 and s,
            10, "the printer's heaters are off",
        )  # fmt: skip
        assert after["files_completed"] == 3, after
        job = until(
            lambda: (j := api(hub_url, requester_token, "GET", f"/jobs/{second.group(1)}"))
            ["task_list"][0]["state"] == "queued" and j,
            30, "the task is back in the queue",
        )  # fmt: skip
        assert job["done"] == 0
        assert broker.proc.poll() is None and hub.proc.poll() is None
    print(f"field test wall time: {time.monotonic() - began:.1f} s "
          f"(wheel and venv: {fabnet.build_s:.1f} s)")  # fmt: skip
