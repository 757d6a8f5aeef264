"""``GET /metrics``: the hub's figures in Prometheus' text exposition format (version 0.0.4).

Operators only (an operator's bearer token, the hub's ``api_token`` included, or session): the
per-machine failure counts say which maker's machines fail, so they are not public. A
Prometheus job scrapes it with ``authorization: {credentials: <token>}``.
"""

from __future__ import annotations

from flask import Blueprint, Response

from fabnet.store.counts import Counts
from fabnet.web.auth import current_user

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    """A label value escaped as the format asks: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(counts: Counts) -> str:
    """The metrics text: failures by cause and machine, tasks by state, machines held."""
    lines = [
        "# HELP fabnet_task_failures_total Task attempts that ended badly, by cause and machine.",
        "# TYPE fabnet_task_failures_total counter",
    ]
    for (cause, machine), n in sorted(counts.failures().items()):
        lines.append(
            f'fabnet_task_failures_total{{cause="{cause.value}",machine="{_label(machine)}"}} {n}'
        )
    lines += [
        "# HELP fabnet_tasks Tasks by state.",
        "# TYPE fabnet_tasks gauge",
    ]
    for state, n in counts.tasks_by_state().items():
        lines.append(f'fabnet_tasks{{state="{state.value}"}} {n}')
    lines += [
        "# HELP fabnet_machines_held Machines on hold after failing too often in a row.",
        "# TYPE fabnet_machines_held gauge",
        f"fabnet_machines_held {counts.machines_held()}",
    ]
    return "\n".join(lines) + "\n"


def make_metrics(counts: Counts) -> Blueprint:
    """The ``/metrics`` blueprint: 401 without credentials, 403 for a non-operator."""
    metrics = Blueprint("metrics", __name__)

    @metrics.get("/metrics")
    def show() -> Response:
        user = current_user()
        if user is None:
            return Response("send Authorization: Bearer <operator token>\n", 401,
                            {"WWW-Authenticate": "Bearer"}, content_type=CONTENT_TYPE)  # fmt: skip
        if not user.is_operator:
            return Response("operators only\n", 403, content_type=CONTENT_TYPE)
        return Response(exposition(counts), 200, content_type=CONTENT_TYPE)

    return metrics
