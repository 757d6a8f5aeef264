"""The hub's HTTP server: waitress in this process (pure Python, threads, no fork), serving one
WSGI app from a thread of its own, beside the scheduler and the dispatcher."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer, create_server

from fabnet.config import DEFAULT_HTTP_THREADS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

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
