"""The policy's decisions, with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fabnet.agent.policy import (
    Decision,
    MachineSituation,
    OfferFacts,
    Verdict,
    decide_offer,
    parse_windows,
)
from fabnet.config import MachinePolicy
from fabnet.errors import ConfigError

EVENING = MachinePolicy(("PLA", "PETG"), 8, True, ("* 18-23 * * 1-5",))
TUESDAY_19H = datetime(2024, 5, 14, 19, 30, tzinfo=UTC)
TUESDAY_9H = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
SATURDAY_19H = datetime(2024, 5, 18, 19, 30, tzinfo=UTC)


def decide(policy: MachinePolicy, when: datetime, material: str = "PLA", hours: float = 2,
           loaded: str = "PLA", holding: str | None = None) -> Decision:  # fmt: skip
    windows = parse_windows(policy, "m")
    return decide_offer(policy, windows, MachineSituation(loaded, holding),
                        OfferFacts(material, hours * 3600), when)  # fmt: skip


def test_accepts_inside_the_window() -> None:
    assert decide(EVENING, TUESDAY_19H) == Decision(Verdict.ACCEPT)
    assert decide(EVENING, TUESDAY_19H, material="pla").verdict is Verdict.ACCEPT


@pytest.mark.parametrize("when", [TUESDAY_9H, SATURDAY_19H])
def test_declines_outside_the_window(when: datetime) -> None:
    assert decide(EVENING, when) == Decision(Verdict.DECLINE, "outside availability window")


def test_no_window_means_always_and_ask_when_not_auto() -> None:
    policy = MachinePolicy(("PLA",), 8, False)
    assert decide(policy, SATURDAY_19H).verdict is Verdict.ASK


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"holding": "t1"}, "machine busy (task t1)"),
        ({"material": "PETG"}, "material PETG not loaded (PLA)"),
        ({"material": "ABS", "loaded": "ABS"}, "material ABS not accepted by policy (PLA, PETG)"),
        ({"hours": 9.5}, "estimated 9.5 h exceeds max 8 h"),
    ],
)
def test_decline_reasons(kwargs: dict[str, object], reason: str) -> None:
    assert decide(EVENING, TUESDAY_19H, **kwargs) == Decision(Verdict.DECLINE, reason)  # type: ignore[arg-type]


def test_exactly_max_hours_is_accepted() -> None:
    assert decide(EVENING, TUESDAY_19H, hours=8).verdict is Verdict.ACCEPT


def test_bad_window_is_a_config_error_naming_the_machine() -> None:
    with pytest.raises(ConfigError, match="machine m: policy.windows: .*hour must be 0..23"):
        parse_windows(MachinePolicy(("PLA",), 8, True, ("* 25 * * *",)), "m")
