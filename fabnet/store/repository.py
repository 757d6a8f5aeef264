"""``Store``: the one object the hub and the web layer use to reach the database."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from fabnet.core.events import TaskEvent
from fabnet.core.ledger import LedgerKey, SeriesPoint, Totals
from fabnet.core.matching import TaskRequest
from fabnet.core.tasks import Outcome, Transition
from fabnet.errors import FabnetError
from fabnet.store.accounts import Accounts
from fabnet.store.catalog import Catalog
from fabnet.store.credits import Credits
from fabnet.store.database import DEFAULT_URL, Database
from fabnet.store.holds import Holds
from fabnet.store.job_counts import backfill as backfill_job_counts
from fabnet.store.jobs import Jobs
from fabnet.store.ledger import Ledger
from fabnet.store.models import Base
from fabnet.store.prices import Prices
from fabnet.store.reviews import Reviews
from fabnet.store.schema_lock import schema_lock
from fabnet.store.tasks import Match, Tasks
from fabnet.store.telemetry import TelemetryLog
from fabnet.store.upgrade import add_missing_columns

log = logging.getLogger(__name__)


class Store:
    """The repository, in four parts sharing one database:

    ``catalog`` (makers, machines, designs), ``jobs`` (submit, get, find, cancel), ``tasks``
    (get, find, queued, apply_event, apply_events, offer_queued, expire_leases,
    expire_offers, machine_offline, claimed_unassigned) and
    ``ledger`` (entries, totals, series, recent_hours_by_maker); and, for issue 11's economy,
    ``credits`` (postings, balances, holds), ``prices`` and ``reviews`` (accept, reject,
    dispute, void, settle). The most used calls are
    also here. Thread-safe; every call is its own transaction.
    """

    def __init__(self, url: str = DEFAULT_URL, *, create_tables: bool = True) -> None:
        self.db = Database(url)
        if create_tables:
            self.create_tables()
        self.catalog = Catalog(self.db)
        self.tasks = Tasks(self.db)
        self.jobs = Jobs(self.db, self.tasks)
        self.ledger = Ledger(self.db)
        self.accounts = Accounts(self.db)
        self.telemetry = TelemetryLog(self.db)  # temperatures of running tasks
        self.holds = Holds(self.db)  # machines held after failing too often in a row
        self.credits = Credits(self.db)  # issue 11: postings, balances, holds
        self.prices = Prices(self.db)  # machine prices and network terms
        self.reviews = Reviews(self.db)  # accept / reject / dispute done tasks, settle jobs

    def create_tables(self) -> None:
        """Create missing tables, and add the columns an older fabnet's tables lack."""
        with schema_lock(self.db.engine):  # hub processes starting together on PostgreSQL
            Base.metadata.create_all(self.db.engine)
            add_missing_columns(self.db.engine)
            backfill_job_counts(self.db.engine)

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()

    def apply_event(self, task_id: str, event: TaskEvent, now: datetime) -> Outcome:
        """See ``Tasks.apply_event``."""
        return self.tasks.apply_event(task_id, event, now)

    def apply_events(
        self, items: Sequence[tuple[str, TaskEvent]], now: datetime
    ) -> list[Outcome | FabnetError]:
        """See ``Tasks.apply_events``: a batch in one transaction, errors per slot."""
        return self.tasks.apply_events(items, now)

    def offer_queued(self, limit: int, now: datetime, match: Match) -> list[Transition]:
        """See ``Tasks.offer_queued``: queued tasks locked, matched and offered at once."""
        return self.tasks.offer_queued(limit, now, match)

    def expire_leases(self, now: datetime) -> list[Transition]:
        """See ``Tasks.expire_leases``."""
        return self.tasks.expire_leases(now)

    def expire_offers(self, now: datetime) -> list[Transition]:
        """See ``Tasks.expire_offers``."""
        return self.tasks.expire_offers(now)

    def queued_tasks(self, limit: int = 1000) -> list[TaskRequest]:
        """See ``Tasks.queued``."""
        return self.tasks.queued(limit)

    def ledger_totals(
        self,
        by: LedgerKey | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Totals]:
        """See ``Ledger.totals``."""
        return self.ledger.totals(by, since, until)

    def ledger_series(
        self,
        since: datetime,
        until: datetime,
        bucket: timedelta,
        by: LedgerKey = LedgerKey.MATERIAL,
    ) -> list[SeriesPoint]:
        """See ``Ledger.series``."""
        return self.ledger.series(since, until, bucket, by)
