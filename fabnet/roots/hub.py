"""The hub process in one of its roles (``fabnet.roots.roles``): store, bus, dispatcher,
scheduler and HTTP server — or the part of them the role runs — wired together.

One ``Hub`` object owns everything its ``start`` made, and ``stop`` undoes it.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import IntegrityError

from fabnet import __version__
from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.config import HubConfig
from fabnet.errors import Conflict
from fabnet.federation.advertise import CapacityService
from fabnet.federation.delegate import Delegator
from fabnet.federation.overflow import OverflowPolicy
from fabnet.federation.peers import PeerService
from fabnet.federation.reporting import Reporter
from fabnet.federation.tick import FederationTick
from fabnet.hub.artifacts import BLOB_FOLDER, ArtifactStore, FolderBlobs
from fabnet.hub.commands import ApiCommands
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatcher import Dispatcher
from fabnet.hub.economy import Economy
from fabnet.hub.metrics import HubMetrics
from fabnet.hub.service import HubCommands, HubService
from fabnet.roots.http import HTTP_THREADS, HttpServer
from fabnet.roots.ops_http import OPS_HTTP_THREADS, make_ops_app
from fabnet.roots.roles import SHARED_SESSION_EXPIRY_S, Role, check_role, client_id
from fabnet.store import Store
from fabnet.store.artifact_records import ArtifactRecords
from fabnet.store.peers import Peers
from fabnet.web import create_app
from fabnet.web.app import WebSettings

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["HTTP_THREADS", "Hub", "HttpServer", "Role", "run_hub"]

log = logging.getLogger(__name__)

ECONOMY_TICK_S = 60.0
"""How often a dispatching process runs the economy's tick (auto-accept after
``auto_accept_after_h``, refunds of settled jobs): hours-scale deadlines need no more, and the
idle sweep stays one read (two reads a minute on top). Safe with several dispatchers: each
acceptance locks its task and pays under a unique key."""


class Hub:
    """One hub process in ``role``. ``start`` returns once it listens (and, unless an ``api``
    process, subscribes); ``stop`` undoes everything ``start`` did.

    ``dispatcher`` is None in the ``api`` role; ``commands`` is what tells machines (the
    dispatcher, or ``ApiCommands``); ``public_url`` is where agents download G-code;
    ``health_url`` is where a ``dispatcher`` process answers ``/healthz``, ``/readyz`` and
    ``/metrics`` (``[http] health_port``; other roles answer them on ``public_url``).
    """

    def __init__(
        self,
        config: HubConfig,
        role: Role = Role.ALL,
        *,
        metrics: HubMetrics | None = None,
        economy_tick_s: float = ECONOMY_TICK_S,
    ) -> None:
        check_role(config, role)
        if not economy_tick_s > 0:
            raise ValueError(f"economy_tick_s must be > 0, got {economy_tick_s}")
        self._economy_tick_s = economy_tick_s
        self.config = config
        self.role = role
        self.metrics = metrics if metrics is not None else HubMetrics()
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets live here
        self.store = Store(config.database_url)
        self.designs = DesignCatalog.for_hub(self.store, config.data_dir)
        self.artifacts = self._artifacts(config)
        settings = BusSettings.from_broker(config.broker, client_id=client_id(config, role))
        # a dispatching process acks agents' messages only once they are applied (issue 9)
        manual_ack = role.dispatches
        if role is Role.ALL:
            gone = msg.HubStatus(hub_id=config.hub_id, state=msg.HubState.GONE, version=__version__)
            self.bus = BusClient(settings, will=(topics.hub_status(), gone), manual_ack=manual_ack)
        else:  # one of several: no process speaks for the hub as a whole on hub/status
            settings = replace(settings, session_expiry_s=SHARED_SESSION_EXPIRY_S)
            self.bus = BusClient(settings, manual_ack=manual_ack)
        self.metrics.watch_bus(f"hub-{role.value}", self.bus.counters)
        self._http: HttpServer | None = None
        self.public_url = config.public_url
        self.health_url = ""
        self.dispatcher: Dispatcher | None = None
        self.commands: HubCommands | None = None
        self.service: HubService | None = None
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def _artifacts(self, config: HubConfig) -> ArtifactStore:
        """G-code files in ``artifacts_dir`` (shared by every hub process), their records and
        token secret in the database."""
        folder = config.data_dir / "artifacts"
        folder.mkdir(mode=0o700, exist_ok=True)  # before the blob folder inside it
        return ArtifactStore(
            folder,
            config.slicer,
            config.machine_slicers,
            records=ArtifactRecords(self.store.db),
            blobs=FolderBlobs(config.artifacts_dir or folder / BLOB_FOLDER),
            token_secret=config.token_secret,
        )

    def start(self) -> None:
        self._register_library()
        if self.role.serves_http:
            self._http = HttpServer(
                self.config.http_host, self.config.http_port, threads=self.config.http_threads
            )
            port = self._http.port
            self.public_url = self.config.public_url or f"http://{self.config.http_host}:{port}"
            self.health_url = f"http://{self.config.http_host}:{port}"
        else:  # a dispatcher: probes and scrapes only, on a port of its own
            self._http = HttpServer(
                self.config.http_host, self.config.health_port, threads=OPS_HTTP_THREADS
            )
            self.health_url = f"http://{self.config.http_host}:{self._http.port}"
        commands: HubCommands
        if self.role.dispatches:
            self.dispatcher = commands = self._make_dispatcher()
        else:
            commands = ApiCommands(self.store, self.bus, self.config.lease_s)
        self.commands = commands
        self.service = HubService(
            self.store,
            self.designs,
            commands.cancel_job,
            max_attempts=self.config.max_attempts,
            control_task=commands.control_task,
        )
        if self.role.serves_http:
            assert self._http is not None
            self._http.serve(self._make_app(self.service, commands))
        elif self._http is not None:
            ops = make_ops_app(
                self.store, self.metrics, self.config.api_token, lambda: self.bus.connected
            )
            self._http.serve(ops)
        if self.dispatcher is not None:
            self.dispatcher.start()
            share = self.role is Role.DISPATCHER  # several dispatchers split the agents' events
            for sub in topics.hub_subscriptions(share=share):
                self.bus.subscribe_acked(sub.filter, self.dispatcher.on_message, qos=sub.qos)
        self.bus.start()
        if self.role is Role.ALL:
            online = msg.HubState.ONLINE
            status = msg.HubStatus(hub_id=self.config.hub_id, state=online, version=__version__)
            self.bus.publish_status(topics.hub_status(), status)
        if self.dispatcher is not None:
            self._scheduler.add_job(
                self.dispatcher.tick,
                "interval",
                seconds=self.config.sweep_interval_s,
                id="sweep-and-offer",
                max_instances=1,
                coalesce=True,
            )
            economy = Economy(self.service, self.config.economy)
            self._scheduler.add_job(
                self._economy_tick,
                "interval",
                args=(economy,),
                seconds=self._economy_tick_s,
                id="economy-tick",
                max_instances=1,
                coalesce=True,
            )
            self._add_federation_tick()
            self._scheduler.start()
        log.info("hub %s (%s) serving %s", self.config.hub_id, self.role.value, self.public_url)

    def _economy_tick(self, economy: Economy) -> None:
        """One economy tick; its failure (e.g. the database away a moment) is logged and the
        next tick tries again, as the sweep does."""
        try:
            report = economy.tick()
        except Exception:  # noqa: BLE001 - a scheduler job's top: log, the next tick retries
            log.exception("economy tick failed; the next one tries again")
            return
        if report.accepted or report.refunded:
            log.info("economy tick: %d parts accepted for their requesters, %d jobs refunded",
                     report.accepted, report.refunded)  # fmt: skip

    def _add_federation_tick(self) -> None:
        """Every ``[federation] tick_s``: advertise, delegate, report (``FederationTick``). It
        idles until a peer is confirmed, so a hub that does not federate only reads its
        peers table."""
        federation = self.config.federation
        if federation is None:
            return
        peers = PeerService(Peers(self.store.db), federation, _now)
        capacities = CapacityService(self.store, peers, _now, federation.capacity_max_age_s)
        policy = OverflowPolicy(
            max_wait=timedelta(seconds=federation.overflow_after_s),
            capacity_max_age=timedelta(seconds=federation.capacity_max_age_s),
        )
        delegator = Delegator(self.store, peers, capacities, self.designs, _now, policy=policy,
                              peer_lease_s=federation.peer_lease_s,
                              transfer_timeout_s=federation.transfer_timeout_s)  # fmt: skip
        reporter = Reporter(self.store, peers, _now, terms=self.config.economy,
                            cancel=self._cancel_foreign_job)  # fmt: skip
        tick = FederationTick(peers, capacities, delegator, reporter, _now,
                              advertise_every_s=federation.advertise_every_s)  # fmt: skip
        self._scheduler.add_job(
            tick.run,
            "interval",
            seconds=federation.tick_s,
            id="federation-tick",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def _cancel_foreign_job(self, job_id: str, reason: str) -> None:
        """Stop a job made here for a peer hub that took its task back: cancelled like a
        requester's, so the machine holding it is told at once; already over is fine."""
        assert self.service is not None
        try:
            self.service.cancel(job_id, reason)
        except Conflict:
            log.info("job %s made for a peer was already over when it was taken back", job_id)

    def _register_library(self) -> None:
        now = datetime.now(UTC)
        try:
            count = self.designs.register_library(now)
        except IntegrityError:  # another hub process added the same design a moment before us
            count = self.designs.register_library(now)
        log.info("hub %s: %d library designs registered", self.config.hub_id, count)

    def _make_dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.store,
            self.bus,
            self.designs,
            self.artifacts,
            self.public_url,
            lease_s=self.config.lease_s,
            offer_timeout_s=self.config.offer_timeout_s,
            max_machines_per_agent=self.config.max_machines_per_agent,
            max_consecutive_failures=self.config.max_consecutive_failures,
            metrics=self.metrics,
            economy_terms=self.config.economy,
        )

    def _make_app(self, service: HubService, commands: HubCommands) -> WSGIApplication:
        settings = WebSettings.from_hub_config(self.config, self.public_url)
        settings = replace(
            settings, broker_connected=lambda: self.bus.connected, metrics=self.metrics
        )
        return create_app(
            service, self.artifacts, self.config.api_token, settings=settings, dispatcher=commands
        )

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self.role is Role.ALL:
            gone = msg.HubState.GONE
            status = msg.HubStatus(hub_id=self.config.hub_id, state=gone, version=__version__)
            self.bus.publish_status(topics.hub_status(), status)
        self.bus.stop()
        if self.dispatcher:
            self.dispatcher.stop()
        if self._http:
            self._http.stop()
        self.store.close()


def _now() -> datetime:
    return datetime.now(UTC)


def run_hub(config: HubConfig, role: Role = Role.ALL) -> None:
    """Run a hub process in ``role`` until SIGINT or SIGTERM."""
    # the scheduler logs every sweep at INFO, several times a second: only its problems here
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    hub = Hub(config, role)
    hub.start()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if role.serves_http:
        where = f"at {hub.public_url}"
    else:
        where = f"for agents at {hub.public_url}, health and metrics at {hub.health_url}"
    print(f"fabnet hub {config.hub_id} ({role.value}) {where} (Ctrl-C stops)", flush=True)
    stopping.wait()
    hub.stop()
