"""``/ledger``: production totals and time series by material, maker, machine, design or job.
Sums come from the ledger table; answers are cached for a few seconds (dashboards poll).

Grouped by job, machine or maker, a non-operator's sums cover only their own rows (issue 13):
a requester's jobs, a maker's machines; by material, design or not grouped they are the
network's (the production figures every dashboard shows)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, current_app

from fabnet.core.ledger import LedgerKey, Totals
from fabnet.core.timeutil import parse_utc
from fabnet.errors import InvalidInput
from fabnet.store.ledger import LedgerScope
from fabnet.web.api.context import ApiContext
from fabnet.web.auth import MAKER, OPERATOR, REQUESTER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

CACHE_S = 5.0
MAX_BUCKETS = 2000
DEFAULT_SERIES_SPAN = timedelta(days=1)
PRIVATE_KEYS = frozenset({LedgerKey.JOB, LedgerKey.MACHINE, LedgerKey.MAKER})
SCOPE_NOTE = (
    "; by job, machine or maker a non-operator sees only their own jobs' and machines' rows"
)
BY_NAMES = {"material": "material", "maker": "maker_id", "machine": "machine_id",
            "design": "design_id", "job": "job_id"}  # fmt: skip
BY = Field("by", "string", enum=tuple(BY_NAMES) + tuple(BY_NAMES.values()))
SINCE = Field("since", "string", format="date-time", description="ISO-8601 with time zone")
UNTIL = Field("until", "string", format="date-time", description="ISO-8601 with time zone")
TOTALS_QUERY = Schema("LedgerTotalsQuery", (BY, SINCE, UNTIL))
SERIES_QUERY = Schema(
    "LedgerSeriesQuery",
    (
        Field("by", "string", enum=BY.enum, default="material"),
        SINCE,
        UNTIL,
        Field("bucket", "integer", minimum=60, maximum=31 * 86400, default=3600,
              description="bucket length in seconds"),
    ),
)  # fmt: skip
TOTAL_FIELDS = (
    Field("tasks", "integer", required=True),
    Field("parts", "integer", required=True),
    Field("grams", "number", required=True),
    Field("machine_hours", "number", required=True),
)
TOTALS = Schema("LedgerTotals", TOTAL_FIELDS)
TOTALS_BY_KEY = Schema(
    "LedgerTotalsByKey", (), open=True, description="{group: LedgerTotals}; 'all' when no by"
)
POINT = Schema(
    "LedgerPoint",
    (
        Field("start", "string", required=True, format="date-time"),
        Field("key", "string", required=True),
        *TOTAL_FIELDS,
    ),
)


def _key(by: str | None) -> LedgerKey | None:
    return LedgerKey(BY_NAMES.get(by, by)) if by else None


def _scope(user: User | None, by: LedgerKey | None) -> LedgerScope | None:
    """The rows ``user`` may see grouped ``by`` (None: all of them)."""
    who = user_of(user)
    if who.is_operator or by not in PRIVATE_KEYS:
        return None
    makers = who.maker_ids if who.is_maker else frozenset()
    return LedgerScope(makers, who.name if who.is_requester else None)


def _totals(t: Totals) -> dict[str, Any]:
    return {"tasks": t.tasks, "parts": t.parts, "grams": t.grams, "machine_hours": t.machine_hours}


class TtlCache:
    """A few seconds of memory for expensive, read-only answers keyed by their query; one
    thread computes a missing answer while the others asking for it wait (no stampede)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._items: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._making: dict[tuple[Any, ...], threading.Lock] = {}

    def _fresh(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return True, hit[1]
        return False, None

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        found, value = self._fresh(key)
        if found:
            return value
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            found, value = self._fresh(key)
            if found:
                return value
            value = make()
            with self._lock:
                if len(self._items) > 256:
                    self._items.clear()
                self._items[key] = (time.monotonic(), value)
                self._making.pop(key, None)
        return value


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _json_response(body: bytes) -> Response:
    """A fresh response around cached bytes (responses themselves are not shared)."""
    return current_app.response_class(body, mimetype="application/json")


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    store = ctx.service.store
    cache = TtlCache(CACHE_S)
    roles = (MAKER, REQUESTER, OPERATOR)

    @routes.route(
        "GET",
        "/ledger/totals",
        summary="Production totals, optionally grouped" + SCOPE_NOTE,
        roles=roles,
        query=TOTALS_QUERY,
        response=TOTALS_BY_KEY,
    )
    def ledger_totals(user: User | None, query: dict[str, Any]) -> Response:
        by = _key(query["by"])
        since, until = parse_utc("since", query["since"]), parse_utc("until", query["until"])

        scope = _scope(user, by)

        def make() -> bytes:
            found = store.ledger.totals(by, since, until, scope)
            return _json({key: _totals(t) for key, t in found.items()})

        return _json_response(cache.get(("totals", by, since, until, scope), make))

    @routes.route(
        "GET",
        "/ledger/series",
        summary="Production per time bucket and group" + SCOPE_NOTE,
        roles=roles,
        query=SERIES_QUERY,
        response=ListOf(POINT),
    )
    def ledger_series(user: User | None, query: dict[str, Any]) -> Response:
        by = _key(query["by"]) or LedgerKey.MATERIAL
        until = parse_utc("until", query["until"]) or datetime.now(UTC)
        since = parse_utc("since", query["since"]) or until - DEFAULT_SERIES_SPAN
        bucket = timedelta(seconds=query["bucket"])
        if since >= until:
            raise InvalidInput(f"since must be before until, got {since} >= {until}")
        if (until - since) / bucket > MAX_BUCKETS:
            raise InvalidInput(
                f"bucket must give at most {MAX_BUCKETS} buckets between since and until, "
                f"got {query['bucket']} s over {until - since}"
            )
        if query["until"] is None:  # "now": round so that polling dashboards share the cache
            until = until.replace(second=0, microsecond=0) + timedelta(minutes=1)
            since = until - DEFAULT_SERIES_SPAN if query["since"] is None else since

        scope = _scope(user, by)

        def make() -> bytes:
            points = ctx.listings.ledger_series(since, until, bucket, by, scope=scope)
            return _json(
                [{"start": p.start.isoformat(), "key": p.key, **_totals(p.totals)} for p in points]
            )

        return _json_response(cache.get(("series", by, since, until, bucket, scope), make))
