"""``fabnet init agent`` writes a config that loads and builds an agent."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fabnet.agent.cli import agent_command
from fabnet.agent.process import Agent
from fabnet.config import load_agent_config
from fabnet.hub.cli import init

REGISTERED = "a-password-registration-issued"


def test_init_agent_writes_a_loadable_example(tmp_path: Path) -> None:
    out = tmp_path / "agent.toml"
    result = CliRunner().invoke(init, ["agent", "-o", str(out)])
    assert result.exit_code == 0, result.output
    out.write_text(out.read_text().replace('"<set by registration>"', f'"{REGISTERED}"'))
    config = load_agent_config(out)
    assert config.agent_id == "alice" and config.machines[0].profile == "prusa_mk3s"
    assert config.machines[0].driver_options == {"speed": 60.0}
    agent = Agent(config)  # profiles, materials, windows and driver all resolve
    assert list(agent.runners) == ["mk3s-1"]
    again = CliRunner().invoke(init, ["agent", "-o", str(out)])
    assert again.exit_code != 0 and "exists" in again.output


def test_agent_command_names_a_missing_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(agent_command, ["--config", str(tmp_path / "nope.toml")])
    assert result.exit_code != 0 and "no such config file" in str(result.exception)
