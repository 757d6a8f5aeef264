"""``[hub] max_consecutive_failures`` (issue 10, item 4): default 3, range-checked, settable by
``FABNET_HUB_MAX_CONSECUTIVE_FAILURES``."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_files import hub_toml

from fabnet.config import load_hub_config
from fabnet.errors import ConfigError


def test_default_env_and_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_hub_config(hub_toml(tmp_path)).max_consecutive_failures == 3
    monkeypatch.setenv("FABNET_HUB_MAX_CONSECUTIVE_FAILURES", "5")
    assert load_hub_config(hub_toml(tmp_path)).max_consecutive_failures == 5
    monkeypatch.setenv("FABNET_HUB_MAX_CONSECUTIVE_FAILURES", "0")
    with pytest.raises(ConfigError, match=r"hub.max_consecutive_failures\) must be 1..1000"):
        load_hub_config(hub_toml(tmp_path))
