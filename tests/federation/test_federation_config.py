"""``[federation]`` in hub.toml: defaults from the hub (name = its id, the key under its data
folder, 300 s of clock skew), values and FABNET_FEDERATION_* checked and named when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabnet.config import load_hub_config
from fabnet.errors import ConfigError

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
    ],
)
def test_bad_values_are_named(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_hub_config(write(tmp_path, extra))
