"""Charts drawn as SVG on the server: stacked areas over time, bars, progress bars and the wall
of machines. Every function returns a complete ``<svg>`` (or HTML) string, already escaped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from fabnet.core.ledger import SeriesPoint
from fabnet.store.telemetry import TemperatureSample

# Colours chosen to stay apart for the colour-blind (Okabe-Ito), cycled per series key.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000")
STATE_COLOURS = {
    "idle": "#2e9e5b",
    "busy": "#2a6fdb",
    "paused": "#e0a100",
    "error": "#d1342f",
    "offline": "#9aa0a6",
}
WALL_TILE_PX = 112
WALL_MAX_TILES = 200  # beyond this the wall shows the busiest machines and a count of the rest


@dataclass(frozen=True)
class WallTile:
    """One machine on the wall: its state, the task it runs (if any) and that task's progress."""

    machine_id: str
    state: str
    kind: str
    task_id: str | None = None
    progress: float = 0.0


def _fmt(value: float) -> str:
    """A short human figure: 1234.5 -> "1.2k", 12.34 -> "12.3"."""
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def _small(value: float) -> str:
    """As ``_fmt``, but small amounts (credits) keep three decimals: 0.013, not 0.0."""
    if abs(value) >= 100:
        return _fmt(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _count(value: float) -> str:
    """Whole numbers (parts, tasks) without a decimal point; others as ``_fmt``."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 10_000 else _fmt(value)


def colour_for(key: str, keys: Sequence[str]) -> str:
    """The palette colour of ``key`` among ``keys`` (stable: by position in sorted keys)."""
    ordered = sorted(keys)
    return PALETTE[ordered.index(key) % len(PALETTE)] if key in ordered else PALETTE[-1]


def area_chart(
    points: Sequence[SeriesPoint],
    *,
    measure: str = "grams",
    unit: str = "g",
    title: str = "",
    width: int = 640,
    height: int = 240,
) -> Markup:
    """Stacked areas of ``measure`` (a ``Totals`` field) per bucket, one band per series key.

    ``points`` come from ``Ledger.series`` (every bucket present for every key). The total over
    the whole range is written in a ``<text class="chart-total">`` so tests and people can read it.
    """
    starts = sorted({p.start for p in points})
    keys = sorted({p.key for p in points})
    values: dict[tuple[datetime, str], float] = {
        (p.start, p.key): float(getattr(p.totals, measure)) for p in points
    }
    total = sum(values.values())
    left, right, top, bottom = 48, 110, 28, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    stacks = [[0.0] * len(starts)]
    for key in keys:
        prev = stacks[-1]
        stacks.append([prev[i] + values.get((s, key), 0.0) for i, s in enumerate(starts)])
    peak = max((max(row, default=0.0) for row in stacks), default=0.0) or 1.0

    def x_at(i: int) -> float:
        return left + (plot_w * i / (len(starts) - 1) if len(starts) > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [_svg_open(width, height, f"{title}: {_fmt(total)} {unit}", "chart area-chart")]
    parts.append(_heading(title, "chart-total", f"{_fmt(total)} {unit}", left, width - right))
    parts += _grid(left, plot_w, y_at, peak, lambda v: _fmt(v if total else 0.0))
    for n, key in enumerate(keys):
        lower, upper = stacks[n], stacks[n + 1]
        if len(starts) == 0:
            break
        top_pts = [f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in enumerate(upper)]
        low_pts = [f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in reversed(list(enumerate(lower)))]
        colour = colour_for(key, keys)
        parts.append(
            f'<polygon class="band" data-key="{escape(key)}" fill="{colour}" fill-opacity="0.75" '
            f'stroke="{colour}" points="{" ".join(top_pts + low_pts)}"/>'
        )
        key_total = sum(values.get((s, key), 0.0) for s in starts)
        ly = top + 14 * n + 8
        parts.append(
            f'<rect x="{width - right + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text class="legend" x="{width - right + 24}" y="{ly + 1}">{escape(key)} '
            f"{_fmt(key_total)}</text>"
        )
    if starts:
        for i in sorted({0, len(starts) // 2, len(starts) - 1}):
            parts.append(
                f'<text class="axis" x="{x_at(i):.1f}" y="{height - 8}" text-anchor="middle">'
                f"{starts[i]:%H:%M}</text>"
            )
    if not keys:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
            'text-anchor="middle">nothing finished yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    items: Sequence[tuple[str, float]], *, unit: str = "", title: str = "", width: int = 360
) -> Markup:
    """Horizontal bars, one per (label, value), longest first as given; values ≥ 0."""
    row_h, left, top = 22, 110, 26
    height = top + row_h * max(len(items), 1) + 8
    peak = max((v for _, v in items), default=0.0) or 1.0
    bar_w = width - left - 70
    parts = [_svg_open(width, height, title, "chart bar-chart")]
    parts.append(f'<text class="chart-title" x="4" y="16">{escape(title)}</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = max(bar_w * value / peak, 0.0)
        parts.append(
            f'<text class="legend" x="{left - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="bar" data-key="{escape(label)}" x="{left}" y="{y + 3}" '
            f'width="{w:.1f}" height="{row_h - 6}" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text class="value" x="{left + w + 4:.1f}" y="{y + 14}">{_count(value)} '
            f"{escape(unit)}</text>"
        )
    if not items:
        parts.append(f'<text class="empty" x="{left}" y="{top + 14}">nothing yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def progress_bar(fraction: float, label: str = "", *, width: int = 160) -> Markup:
    """A bar filled to ``fraction`` (clamped to 0..1) with the percentage written on it."""
    f = min(max(fraction, 0.0), 1.0)
    text = label or f"{f * 100:.0f} %"
    return Markup(
        f'<svg class="progress" width="{width}" height="14" viewBox="0 0 {width} 14" '
        f'role="img" aria-label="{escape(text)}"><rect width="{width}" height="14" rx="3" '
        f'class="track"/><rect class="fill" width="{width * f:.1f}" height="14" rx="3"/>'
        f'<text x="{width / 2}" y="11" text-anchor="middle">{escape(text)}</text></svg>'
    )


def machine_wall(
    tiles: Sequence[WallTile], *, columns: int = 8, total: int | None = None
) -> Markup:
    """A grid of machines coloured by state, each with its task's progress bar.

    More than ``WALL_MAX_TILES`` machines: the busy ones first, then a line counting the rest.
    ``total`` is how many machines there are when ``tiles`` is already a selection of them.
    """
    shown = sorted(tiles, key=lambda t: (t.state != "busy", t.state, t.machine_id))
    total = max(total or 0, len(shown))
    shown = shown[:WALL_MAX_TILES]
    hidden = total - len(shown)
    size, gap = WALL_TILE_PX, 6
    cols = max(1, min(columns, len(shown) or 1))
    rows = -(-len(shown) // cols) if shown else 1
    width = cols * (size + gap)
    height = rows * (56 + gap) + (20 if hidden else 0)
    parts = [_svg_open(width, height, f"{total} machines", "wall")]
    for i, t in enumerate(shown):
        x, y = (i % cols) * (size + gap), (i // cols) * (56 + gap)
        colour = STATE_COLOURS.get(t.state, "#666")
        f = min(max(t.progress, 0.0), 1.0)
        task = f" · {t.progress * 100:.0f} %" if t.task_id else ""
        parts.append(
            f'<g class="tile" data-machine="{escape(t.machine_id)}" data-state="{escape(t.state)}"'
            f' transform="translate({x},{y})"><title>{escape(t.machine_id)}: {escape(t.state)}'
            f"{escape(task)}</title>"
            f'<rect width="{size}" height="56" rx="5" fill="{colour}"/>'
            f'<text x="6" y="17" class="tile-name">{escape(_short(t.machine_id, 16))}</text>'
            f'<text x="6" y="33" class="tile-state">{escape(t.state)} {escape(t.kind)}</text>'
            f'<rect x="6" y="41" width="{size - 12}" height="8" rx="2" class="tile-track"/>'
            f'<rect x="6" y="41" width="{(size - 12) * f:.1f}" height="8" rx="2" '
            'class="tile-fill"/></g>'
        )
    if hidden:
        parts.append(f'<text class="axis" x="0" y="{height - 4}">and {hidden} more machines</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# (field, label, colour, dashed): readings solid, targets dashed in the heater's colour
TEMPERATURE_LINES = (
    ("hotend_c", "hotend", PALETTE[5], False),
    ("hotend_target_c", "hotend target", PALETTE[5], True),
    ("bed_c", "bed", PALETTE[0], False),
    ("bed_target_c", "bed target", PALETTE[0], True),
)


def temperature_chart(
    samples: Sequence[TemperatureSample], *, width: int = 640, height: int = 200
) -> Markup:
    """Hotend and bed temperatures (°C) over a task's run, readings and targets; the latest
    readings are written in ``<text class="chart-latest">``. ``samples`` oldest first."""
    left, right, top, bottom = 40, 120, 24, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in samples for f, *_ in TEMPERATURE_LINES if (v := getattr(s, f)) is not None]
    peak = max(max(values, default=0.0) * 1.1, 50.0)
    t0 = samples[0].at if samples else None
    span = (samples[-1].at - samples[0].at).total_seconds() if len(samples) > 1 else 0.0

    def x_at(s: TemperatureSample) -> float:
        offset = (s.at - t0).total_seconds() if t0 is not None else 0.0
        return left + (plot_w * offset / span if span > 0 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    last = samples[-1] if samples else None
    latest = " · ".join(
        f"{name} {v:.0f} °C"
        for f, name, *_ in TEMPERATURE_LINES
        if last is not None and not name.endswith("target") and (v := getattr(last, f)) is not None
    )
    parts = [
        _svg_open(width, height, f"temperatures: {latest or 'no readings'}", "chart temp-chart")
    ]
    parts.append(_heading("Temperatures (°C)", "chart-latest", latest, left, width - right))
    parts += _grid(left, plot_w, y_at, peak, lambda v: f"{v:.0f}")
    for n, (field_name, label, colour, dashed) in enumerate(TEMPERATURE_LINES):
        pts = [
            f"{x_at(s):.1f},{y_at(v):.1f}"
            for s in samples
            if (v := getattr(s, field_name)) is not None
        ]
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        if pts:
            parts.append(
                f'<polyline class="series" data-key="{field_name}" fill="none" '
                f'stroke="{colour}" stroke-width="1.5"{dash} points="{" ".join(pts)}"/>'
            )
        ly = top + 14 * n + 8
        parts.append(
            f'<line x1="{width - right + 8}" x2="{width - right + 24}" y1="{ly - 3}" '
            f'y2="{ly - 3}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text class="legend" x="{width - right + 28}" y="{ly + 1}">{label}</text>'
        )
    if t0 is not None:
        parts.append(
            f'<text class="axis" x="{left}" y="{height - 8}">{t0:%H:%M:%S}</text>'
            f'<text class="axis" x="{left + plot_w}" y="{height - 8}" text-anchor="end">'
            f"{samples[-1].at:%H:%M:%S}</text>"
        )
    else:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
            'text-anchor="middle">no readings yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg_open(width: int, height: int, label: str, css: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">'
    )


def _heading(title: str, side_class: str, side_text: str, left: float, right_x: float) -> str:
    """A chart's title on the left and its figure (``side_class``) right-aligned at ``right_x``."""
    return (
        f'<text class="chart-title" x="{left}" y="16">{escape(title)}</text>'
        f'<text class="{side_class}" x="{right_x}" y="16" text-anchor="end">'
        f"{escape(side_text)}</text>"
    )


def _grid(
    left: float, plot_w: float, y_at: Callable[[float], float], peak: float,
    label: Callable[[float], str],
) -> list[str]:  # fmt: skip
    """Grid lines at 0, half and the peak, each with ``label(value)`` on the axis."""
    lines = []
    for frac in (0.0, 0.5, 1.0):
        y = y_at(peak * frac)
        lines.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{label(peak * frac)}</text>"
        )
    return lines


def month_columns(
    months: Sequence[tuple[str, dict[str, float]]],
    *,
    keys: Sequence[str],
    unit: str = "",
    title: str = "",
    width: int = 640,
    height: int = 220,
) -> Markup:
    """Columns side by side per month (``YYYY-MM``), one per series in ``keys`` (values >= 0,
    e.g. credits earned and spent), each ``<rect class="column" data-month data-key>``; the
    sum of the first series over all months is written in ``<text class="chart-total">``."""
    left, right, top, bottom = 48, 110, 28, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    total = sum(values.get(keys[0], 0.0) for _, values in months) if keys else 0.0
    peak = max((v for _, values in months for v in values.values()), default=0.0) or 1.0

    def y_at(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [_svg_open(width, height, f"{title}: {_small(total)} {unit}", "chart month-columns")]
    parts.append(_heading(title, "chart-total", f"{_small(total)} {unit}", left, width - right))
    parts += _grid(left, plot_w, y_at, peak, lambda v: _small(v if months else 0.0))
    slot = plot_w / max(len(months), 1)
    column = max(min(slot * 0.8 / max(len(keys), 1), 40.0), 2.0)
    for i, (month, values) in enumerate(months):
        x0 = left + slot * i + (slot - column * len(keys)) / 2
        for n, key in enumerate(keys):
            value = max(values.get(key, 0.0), 0.0)
            y = y_at(value)
            parts.append(
                f'<rect class="column" data-month="{escape(month)}" data-key="{escape(key)}" '
                f'data-value="{value:g}" x="{x0 + n * column:.1f}" y="{y:.1f}" '
                f'width="{column - 1:.1f}" height="{top + plot_h - y:.1f}" '
                f'fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(month)} {escape(key)}: '
                f"{_small(value)} {escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text class="axis" x="{left + slot * (i + 0.5):.1f}" y="{height - 8}" '
            f'text-anchor="middle">{escape(month)}</text>'
        )
    for n, key in enumerate(keys):
        ly = top + 14 * n + 8
        parts.append(
            f'<rect x="{width - right + 10}" y="{ly - 8}" width="10" height="10" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/><text class="legend" x="{width - right + 24}" '
            f'y="{ly + 1}">{escape(key)}</text>'
        )
    if not months:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
            'text-anchor="middle">no credits moved yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
