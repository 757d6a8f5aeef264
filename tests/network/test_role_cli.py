"""The role commands against a running hub: init, submit, jobs list|show|cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from network_harness import Network

from fabnet.cli import cli
from fabnet.config import load_agent_config, load_hub_config
from fabnet.errors import ConfigError


def test_init_writes_configs_that_load(tmp_path: Path) -> None:
    runner = CliRunner()
    hub_toml, agent_toml = tmp_path / "hub.toml", tmp_path / "agent.toml"
    assert runner.invoke(cli, ["init", "hub", "-o", str(hub_toml)]).exit_code == 0
    assert runner.invoke(cli, ["init", "agent", "-o", str(agent_toml)]).exit_code == 0
    assert load_hub_config(hub_toml).http_port == 5000
    with pytest.raises(ConfigError, match="broker.password is a placeholder; register the"):
        load_agent_config(agent_toml)  # until registration fills in its password
    again = runner.invoke(cli, ["init", "hub", "-o", str(hub_toml)])
    assert again.exit_code != 0 and "exists" in again.output


def test_submit_list_show_cancel(network: Network) -> None:
    network.start_hub()
    runner = CliRunner()
    auth = ["--hub", network.hub_url, "--token", network.files.api_token]
    out = runner.invoke(
        cli, ["submit", "cube-xyz-20mm", "--quantity", "3", "--material", "PLA", *auth]
    )
    assert out.exit_code == 0, out.output
    job_id = out.output.split()[1].rstrip(":")
    listed = runner.invoke(cli, ["jobs", "list", *auth])
    assert job_id in listed.output and "0/3" in listed.output
    shown = runner.invoke(cli, ["jobs", "show", job_id, *auth])
    assert shown.output.count("queued") >= 3
    cancelled = runner.invoke(cli, ["jobs", "cancel", job_id, *auth])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    again = runner.invoke(cli, ["jobs", "cancel", job_id, *auth])
    assert again.exit_code != 0 and "409" in str(again.exception or again.output)


def test_follow_shows_progress_until_done(network: Network) -> None:
    network.start_hub()
    network.start_agent("chen")
    runner = CliRunner()
    auth = ["--hub", network.hub_url, "--token", network.files.api_token]
    out = runner.invoke(
        cli, ["submit", "cube-xyz-20mm", "--quantity", "2", "--material", "PLA", *auth]
    )
    job_id = out.output.split()[1].rstrip(":")
    followed = runner.invoke(cli, ["jobs", "show", job_id, "--follow", *auth])
    assert followed.exit_code == 0, followed.output
    assert "parts done" in followed.output and " done " in followed.output


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    CliRunner().invoke(cli, ["init", "hub", "-o", str(path)])
    path.write_text(path.read_text().replace("lease_s = 120", "leese_s = 120"))
    result = CliRunner().invoke(cli, ["hub", "--config", str(path)])
    assert result.exit_code != 0
    assert "unknown key(s) hub.leese_s" in str(result.exception)


def test_slicer_per_machine_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    CliRunner().invoke(cli, ["init", "hub", "-o", str(path)])
    text = path.read_text()
    path.write_text(text + '\n[slicers]\n"ada/mk3s-1" = "prusaslicer"\n')
    assert load_hub_config(path).machine_slicers == {"ada/mk3s-1": "prusaslicer"}
    path.write_text(text + '\n[slicers]\n"ada/mk3s-1" = "slic3r"\n')
    result = CliRunner().invoke(cli, ["hub", "--config", str(path)])
    assert "slicers.ada/mk3s-1 must be one of builtin, prusaslicer, curaengine" in str(
        result.exception
    )
