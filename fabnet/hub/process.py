"""The hub process: store, bus, dispatcher, scheduler and HTTP server wired together.

HTTP is waitress, in this process (pure Python, threads, no fork): the scheduler and the
dispatcher run beside it and the ``Hub`` object stays the one owner of all three.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer, create_server

from fabnet import __version__
from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.config import DEFAULT_HTTP_THREADS, HubConfig
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatcher import Dispatcher
from fabnet.hub.service import HubService
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.app import WebSettings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

HTTP_THREADS = DEFAULT_HTTP_THREADS
"""waitress worker threads by default (``[http] threads``). An open live page (``/events``)
holds one for up to ``fabnet.web.events.STREAM_MAX_S``, so at most half of them stream (see
``fabnet.web.events``: a page beyond that is told to come back later) and the other half
always answer the API and agents' downloads. More threads made the slowest API requests slower
under load, as they compete for the GIL with the loop thread that reads and writes every
socket: at 16 threads p99 was up to 1.24x werkzeug's, at 8 below it on every route
(bench/README.md, ``serve.py``)."""
HTTP_CONNECTION_LIMIT = 200  # open sockets (keep-alive and streams) before accepts pause
HTTP_CHANNEL_TIMEOUT_S = 60  # an idle keep-alive connection is closed after this
HTTP_STOP_S = 5  # how long ``HttpServer.stop`` waits for a request in progress


class _AppSlot:
    """The WSGI callable waitress holds: the hub's Flask app once set, 503 before (the app is
    built after the port is known, because its public URL names the port)."""

    def __init__(self) -> None:
        self.app: WSGIApplication | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting\n"]
        return self.app(environ, start_response)


class HttpServer:
    """waitress serving one app from a thread of its own.

    Listens on construction (``port`` 0 picks a free port, read back as ``port``); ``serve``
    starts answering; ``stop`` closes the listening socket and every connection (live streams
    included) and joins the threads.
    """

    def __init__(self, host: str, port: int, *, threads: int = HTTP_THREADS) -> None:
        self._slot = _AppSlot()
        self._map: dict[int, Any] = {}  # waitress's socket map: fd -> dispatcher
        server = create_server(
            self._slot,
            map=self._map,
            host=host,
            port=port,
            threads=threads,
            connection_limit=HTTP_CONNECTION_LIMIT,
            channel_timeout=HTTP_CHANNEL_TIMEOUT_S,
            asyncore_use_poll=True,  # select() stops at file descriptor 1024
            ident="fabnet",
        )
        # one listener per address the host resolves to; they share the map and the threads
        self._listeners = [d for d in self._map.values() if isinstance(d, TcpWSGIServer)]
        self._adj = server.adj
        self._tasks = server.task_dispatcher
        self.port = int(self._listeners[0].getsockname()[1])
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hub-http", daemon=True)

    def serve(self, app: WSGIApplication) -> None:
        """Answer with ``app`` from now on."""
        self._slot.app = app
        self._thread.start()

    def stop(self) -> None:
        """Close every socket from the loop's own thread, then stop the worker threads."""
        self._stopping.set()
        if self._thread.is_alive():
            self._listeners[0].pull_trigger()  # wakes poll() at once
            self._thread.join(HTTP_STOP_S + 1)
        else:
            self._close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            wasyncore.loop(
                timeout=self._adj.asyncore_loop_timeout,
                use_poll=self._adj.asyncore_use_poll,
                map=self._map,
                count=1,
            )
        self._close()

    def _close(self) -> None:
        # Connections first: a streaming response then fails at its next write and frees its
        # thread. The listeners and their wake-up pipe last, once no worker can write to it.
        for channel in [d for d in self._map.values() if isinstance(d, HTTPChannel)]:
            channel.handle_close()
        self._tasks.shutdown(timeout=HTTP_STOP_S)
        wasyncore.close_all(self._map, ignore_all=True)


class Hub:
    """One hub. ``start`` returns once it listens; ``stop`` undoes everything ``start`` did."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets live here
        self.store = Store(config.database_url)
        self.designs = DesignCatalog.for_hub(self.store, config.data_dir)
        self.artifacts = ArtifactStore(
            config.data_dir / "artifacts", config.slicer, config.machine_slicers
        )
        b = config.broker
        settings = BusSettings.from_broker(b, client_id=f"fabnet-hub-{config.hub_id}")
        gone = msg.HubStatus(hub_id=config.hub_id, state=msg.HubState.GONE, version=__version__)
        self.bus = BusClient(settings, will=(topics.hub_status(), gone))
        self._http: HttpServer | None = None
        self.public_url = config.public_url
        self.dispatcher: Dispatcher | None = None
        self.service: HubService | None = None
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        now = datetime.now(UTC)
        count = self.designs.register_library(now)
        log.info("hub %s: %d library designs registered", self.config.hub_id, count)
        self._http = HttpServer(
            self.config.http_host, self.config.http_port, threads=self.config.http_threads
        )
        port = self._http.port
        self.public_url = self.config.public_url or f"http://{self.config.http_host}:{port}"
        self.dispatcher = Dispatcher(
            self.store,
            self.bus,
            self.designs,
            self.artifacts,
            self.public_url,
            lease_s=self.config.lease_s,
            offer_timeout_s=self.config.offer_timeout_s,
            max_machines_per_agent=self.config.max_machines_per_agent,
            max_consecutive_failures=self.config.max_consecutive_failures,
        )
        self.service = HubService(
            self.store,
            self.designs,
            self.dispatcher.cancel_job,
            max_attempts=self.config.max_attempts,
            control_task=self.dispatcher.control_task,
        )
        settings = WebSettings.from_hub_config(self.config, self.public_url)
        app = create_app(
            self.service,
            self.artifacts,
            self.config.api_token,
            settings=replace(settings, broker_connected=lambda: self.bus.connected),
            dispatcher=self.dispatcher,
        )
        self._http.serve(app)
        self.dispatcher.start()
        for sub in topics.hub_subscriptions():
            self.bus.subscribe(sub.filter, self.dispatcher.on_message, qos=sub.qos)
        self.bus.start()
        self.bus.publish_status(
            topics.hub_status(),
            msg.HubStatus(
                hub_id=self.config.hub_id, state=msg.HubState.ONLINE, version=__version__
            ),
        )
        self._scheduler.add_job(
            self.dispatcher.tick,
            "interval",
            seconds=self.config.sweep_interval_s,
            id="sweep-and-offer",
            max_instances=1,
            coalesce=True,
        )
        self._scheduler.start()
        log.info("hub %s serving %s", self.config.hub_id, self.public_url)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self.bus.publish_status(
            topics.hub_status(),
            msg.HubStatus(hub_id=self.config.hub_id, state=msg.HubState.GONE, version=__version__),
        )
        self.bus.stop()
        if self.dispatcher:
            self.dispatcher.stop()
        if self._http:
            self._http.stop()
        self.store.close()


def run_hub(config: HubConfig) -> None:
    """Run a hub until SIGINT or SIGTERM."""
    hub = Hub(config)
    hub.start()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"fabnet hub {config.hub_id} at {hub.public_url} (Ctrl-C stops)", flush=True)
    stopping.wait()
    hub.stop()
