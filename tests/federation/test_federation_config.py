"""``[federation]`` in hub.toml: defaults from the hub (name = its id, the key under its data
folder, 300 s of clock skew) and the federation modules (the tick's timings), values and
FABNET_FEDERATION_* checked and named when wrong."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fabnet.config import FederationConfig, load_hub_config
from fabnet.errors import ConfigError
from fabnet.federation.advertise import ADVERTISE_EVERY_S
from fabnet.federation.capacity import DEFAULT_MAX_AGE_S
from fabnet.federation.overflow import DEFAULT_MAX_WAIT
from fabnet.hub.cli import HUB_EXAMPLE

BASE = '[hub]\nid = "north"\ndata_dir = "data"\n[http]\napi_token = "t-0123456789abcdef"\n' \
       '[broker]\npassword = "broker-secret-123"\n'  # fmt: skip


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(BASE + extra)
    return path


def test_defaults_come_from_the_hub(tmp_path: Path) -> None:
    config = load_hub_config(write(tmp_path)).federation
    assert config is not None
    assert config.name == "north" and config.max_clock_skew_s == 300
    assert config.key_file == (tmp_path / "data" / "federation" / "hub_ed25519.pem").resolve()
    assert not config.key_file.exists()  # made on first use, not when the config is read


def test_values_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[federation]\nname = "north-hub"\nkey_file = "k.pem"\n'
                          "max_clock_skew_s = 30\n")  # fmt: skip
    config = load_hub_config(path).federation
    assert config is not None
    assert (config.name, config.key_file, config.max_clock_skew_s) == (
        "north-hub", (tmp_path / "k.pem").resolve(), 30)  # fmt: skip
    monkeypatch.setenv("FABNET_FEDERATION_NAME", "south")
    assert load_hub_config(path).federation.name == "south"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('[federation]\nname = "two words"\n', "name must be"),
        ("[federation]\nmax_clock_skew_s = 0\n", "max_clock_skew_s"),
        ('[federation]\nnmae = "x"\n', "nmae"),
        ("[federation]\ntick_s = 0.1\n", r"federation\.tick_s must be 0\.2\.\.3600, got 0\.1"),
        ("[federation]\nadvertise_every_s = 0\n", "advertise_every_s must be"),
        ('[federation]\npeer_lease_s = "long"\n', "peer_lease_s must be a number"),
        ("[federation]\noverflow_after_s = -5\n", "overflow_after_s must be"),
        ("[federation]\ntransfer_timeout_s = 7200\n", "transfer_timeout_s must be 1..3600"),
        (
            "[federation]\ncapacity_max_age_s = 30\n",
            r"capacity_max_age_s must be greater than advertise_every_s \(60\), got 30",
        ),
    ],
)
def test_bad_values_are_named(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_hub_config(write(tmp_path, extra))


def test_timing_defaults_are_the_modules_own() -> None:
    """The config keeps its own copy of the defaults (reading it imports no federation code):
    they must not drift from the constants the modules use when given nothing."""
    config = FederationConfig("north", Path("k.pem"))
    assert config.advertise_every_s == ADVERTISE_EVERY_S
    assert config.capacity_max_age_s == DEFAULT_MAX_AGE_S
    assert config.overflow_after_s == DEFAULT_MAX_WAIT.total_seconds()
    assert (config.tick_s, config.peer_lease_s, config.transfer_timeout_s) == (5, 900, 60)


def test_timings_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[federation]\ntick_s = 1\nadvertise_every_s = 2\n"
                           "capacity_max_age_s = 20\noverflow_after_s = 3\npeer_lease_s = 20\n"
                           "transfer_timeout_s = 10\n")  # fmt: skip
    config = load_hub_config(path).federation
    assert config is not None
    assert (config.tick_s, config.advertise_every_s, config.capacity_max_age_s,
            config.overflow_after_s, config.peer_lease_s, config.transfer_timeout_s) == (
        1, 2, 20, 3, 20, 10)  # fmt: skip
    monkeypatch.setenv("FABNET_FEDERATION_PEER_LEASE_S", "45")
    monkeypatch.setenv("FABNET_FEDERATION_TICK_S", "0.5")
    config = load_hub_config(path).federation
    assert config is not None and (config.peer_lease_s, config.tick_s) == (45, 0.5)
    monkeypatch.setenv("FABNET_FEDERATION_CAPACITY_MAX_AGE_S", "1")
    with pytest.raises(ConfigError, match="FABNET_FEDERATION_CAPACITY_MAX_AGE_S .*greater than"):
        load_hub_config(path)
    monkeypatch.setenv("FABNET_FEDERATION_CAPACITY_MAX_AGE_S", "never")
    with pytest.raises(ConfigError, match="FABNET_FEDERATION_CAPACITY_MAX_AGE_S"):
        load_hub_config(path)


def test_the_commented_block_fabnet_init_writes_states_the_defaults(tmp_path: Path) -> None:
    """Uncommented as it stands, ``fabnet init hub``'s [federation] block changes nothing but
    the name it spells out."""
    example = HUB_EXAMPLE.split("# [federation]\n", 1)[1]
    block = "".join(line[2:] + "\n" for line in example.splitlines() if line.startswith("# "))
    assert "peer_lease_s = 900" in block
    defaults = load_hub_config(write(tmp_path)).federation
    written = load_hub_config(write(tmp_path, "[federation]\n" + block)).federation
    assert written is not None and defaults is not None
    assert written.name == "hub"
    assert dataclasses.replace(written, name=defaults.name) == defaults
