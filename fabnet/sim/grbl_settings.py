"""The ``$`` settings of the simulated GRBL (Shapeoko 3 defaults) and the reports built on them."""

from __future__ import annotations

from fabnet.sim.grbl_gcode import ModalState, Vec3

BANNER = "\r\nGrbl 1.1h ['$' for help]\r\n"
UNLOCK_MSG = "[MSG:'$H'|'$X' to unlock]"
RESET_MSG = "[MSG:Reset to continue]"
HELP_MSG = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"
BUILD_INFO = ("[VER:1.1h.20190825:]", "[OPT:V,15,128]")


def default_settings(homing: bool, soft_limits: bool, travel_mm: Vec3) -> dict[int, float]:
    """GRBL settings by number; $22 homing and $20 soft limits as configured."""
    return {
        0: 10, 1: 255, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
        20: int(soft_limits), 21: 0, 22: int(homing), 23: 0, 24: 25.0, 25: 500.0, 26: 250,
        27: 1.0, 30: 30000, 31: 10000, 32: 0,
        100: 40.0, 101: 40.0, 102: 40.0, 110: 5000.0, 111: 5000.0, 112: 1000.0,
        120: 400.0, 121: 400.0, 122: 50.0,
        130: travel_mm[0], 131: travel_mm[1], 132: travel_mm[2],
    }  # fmt: skip


_INTEGER_SETTINGS = frozenset({0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32})


def settings_report(settings: dict[int, float]) -> list[str]:
    """``$$`` lines, e.g. ``$11=0.010``."""
    return [
        f"${n}={int(v)}" if n in _INTEGER_SETTINGS else f"${n}={v:.3f}"
        for n, v in sorted(settings.items())
    ]


def _xyz(v: Vec3) -> str:
    return f"{v[0]:.3f},{v[1]:.3f},{v[2]:.3f}"


def parameters_report(modal: ModalState) -> list[str]:
    """``$#`` lines: work offsets, G28/G30, G92, tool length offset, last probe."""
    zero = (0.0, 0.0, 0.0)
    lines = [f"[G54:{_xyz(modal.wco)}]"]
    lines += [f"[G{n}:{_xyz(zero)}]" for n in range(55, 60)]
    lines += [f"[G28:{_xyz(modal.home_position)}]", f"[G30:{_xyz(zero)}]"]
    lines += [f"[G92:{_xyz(zero)}]", "[TLO:0.000]", f"[PRB:{_xyz(zero)}:0]"]
    return lines


def status_report(
    state: str,
    mpos: Vec3,
    planner_free: int,
    rx_free: int,
    feed_mm_min: float,
    rpm: float,
    extras: list[str],
) -> str:
    """``<Run|MPos:1.000,2.000,3.000|Bf:14,100|FS:500,8000|...>``."""
    fields = [
        state,
        f"MPos:{_xyz(mpos)}",
        f"Bf:{planner_free},{rx_free}",
        f"FS:{feed_mm_min:.0f},{rpm:.0f}",
        *extras,
    ]
    return "<" + "|".join(fields) + ">"


def wco_field(wco: Vec3) -> str:
    return f"WCO:{_xyz(wco)}"
