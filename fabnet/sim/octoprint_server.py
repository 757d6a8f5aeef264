"""A fake OctoPrint on 127.0.0.1 answering the REST calls fabnet uses, as OctoPrint documents them.

Routes: /api/version, /api/connection, /api/files/local (upload, 201 + Location), file select
command, /api/job GET/POST (204, 409 with a reason), /api/printer (409 when not operational).
Requests without the right ``X-Api-Key`` (or ``?apikey=``) get 403. Errors are
``{"error": "<reason>"}`` as OctoPrint's API sends them.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fabnet.sim.octoprint_printer import FakePrinter

log = logging.getLogger(__name__)

VERSION = {"api": "0.1", "server": "1.10.2", "text": "OctoPrint 1.10.2"}
GCODE_SUFFIXES = (".gcode", ".gco", ".g")


class _Reply(Exception):
    """Ends a request with ``status`` and an ``{"error": reason}`` body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class FakeOctoPrint:
    """``with FakeOctoPrint(api_key="k", speed=50) as server: server.url`` — a running server."""

    def __init__(self, api_key: str = "fabnet-test-key", speed: float = 1.0, port: int = 0) -> None:
        self.api_key = api_key
        self.printer = FakePrinter(speed)
        self.requests: list[str] = []  # "METHOD /path" in arrival order
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-octoprint", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        if not self._thread.is_alive():
            self._thread.start()
        return self.url

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOctoPrint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOctoPrint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake OctoPrint: " + format, *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        self.fake.requests.append(f"{method} {url.path}")
        body = self._read_body()
        try:
            key = self.headers.get("X-Api-Key") or parse_qs(url.query).get("apikey", [None])[0]
            if key != self.fake.api_key:
                raise _Reply(403, "You don't have the permission to access the requested resource")
            self._route(method, url.path, body)
        except _Reply as reply:
            self._send(reply.status, {"error": reply.reason})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, payload: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise _Reply(400, "Malformed JSON body in request") from None
        if not isinstance(data, dict):
            raise _Reply(400, "Malformed JSON body in request")
        return data

    def _route(self, method: str, path: str, body: bytes) -> None:
        printer = self.fake.printer
        if (method, path) == ("GET", "/api/version"):
            self._send(200, VERSION)
        elif (method, path) == ("GET", "/api/connection"):
            self._send(200, _connection(printer.state))
        elif (method, path) == ("POST", "/api/connection"):
            self._connection_command(self._json(body))
        elif (method, path) == ("POST", "/api/files/local"):
            self._upload(body)
        elif method == "POST" and path.startswith("/api/files/local/"):
            self._file_command(unquote(path[len("/api/files/local/") :]), self._json(body))
        elif (method, path) == ("GET", "/api/job"):
            self._send(200, printer.job())
        elif (method, path) == ("POST", "/api/job"):
            self._job_command(self._json(body))
        elif (method, path) == ("GET", "/api/printer"):
            if not printer.operational:
                raise _Reply(409, "Printer is not operational")
            self._send(200, printer.printer())
        else:
            raise _Reply(404, "The requested URL was not found on the server.")

    def _connection_command(self, data: dict[str, Any]) -> None:
        command = data.get("command")
        if command == "connect":
            self.fake.printer.set_operational()
        elif command == "disconnect":
            self.fake.printer.set_offline()
        else:
            raise _Reply(400, f"Unknown command: {command}")
        self._send(204)

    def _upload(self, body: bytes) -> None:
        form = _multipart(self.headers.get("Content-Type", ""), body)
        if "file" not in form:
            raise _Reply(400, "No file to upload and no folder to create")
        name, data = form["file"]
        if not name or not name.lower().endswith(GCODE_SUFFIXES):
            raise _Reply(415, "Could not upload the file, unsupported file type")
        printer = self.fake.printer
        conflict = printer.store(name, data)
        if conflict:
            raise _Reply(409, conflict)
        want_print = form.get("print", ("", b""))[1].decode().lower() in ("true", "yes", "1")
        want_select = want_print or form.get("select", ("", b""))[1].decode().lower() == "true"
        effective_select = effective_print = False
        if want_select and printer.operational:
            effective_select = printer.select(name, start=False) is None
            effective_print = want_print and effective_select and printer.start() is None
        base = self.fake.url
        entry: dict[str, Any] = {
            "name": name,
            "path": name,
            "type": "machinecode",
            "typePath": ["machinecode", "gcode"],
            "origin": "local",
            "refs": {
                "resource": f"{base}/api/files/local/{name}",
                "download": f"{base}/downloads/files/local/{name}",
            },
        }
        payload = {
            "files": {"local": entry},
            "done": True,
            "effectiveSelect": effective_select,
            "effectivePrint": effective_print,
        }
        self._send(201, payload, {"Location": entry["refs"]["resource"]})

    def _file_command(self, name: str, data: dict[str, Any]) -> None:
        printer = self.fake.printer
        if name not in printer.files:
            raise _Reply(404, f"File not found on 'local': {name}")
        if data.get("command") != "select":
            raise _Reply(400, f"Unknown command: {data.get('command')}")
        conflict = printer.select(name, start=bool(data.get("print")))
        if conflict:
            raise _Reply(409, conflict)
        self._send(204)

    def _job_command(self, data: dict[str, Any]) -> None:
        printer = self.fake.printer
        if not printer.operational:
            raise _Reply(409, "Printer is not operational")
        command = data.get("command")
        if command == "start":
            conflict = printer.start()
        elif command == "cancel":
            conflict = printer.cancel()
        elif command == "pause":
            action = data.get("action", "toggle")
            if action not in ("pause", "resume", "toggle"):
                raise _Reply(400, "Unknown action")
            conflict = printer.pause(action)
        else:
            raise _Reply(400, f"Unknown command: {command}")
        if conflict:
            raise _Reply(409, conflict)
        self._send(204)


def _connection(state: str) -> dict[str, Any]:
    offline = state.startswith(("Offline", "Closed"))
    return {
        "current": {
            "state": state,
            "port": None if offline else "/dev/ttyACM0",
            "baudrate": None if offline else 115200,
            "printerProfile": "_default",
        },
        "options": {
            "ports": ["/dev/ttyACM0"],
            "baudrates": [250000, 230400, 115200, 57600, 38400, 19200, 9600],
            "printerProfiles": [{"name": "Default", "id": "_default"}],
            "portPreference": "/dev/ttyACM0",
            "baudratePreference": 115200,
            "printerProfilePreference": "_default",
            "autoconnect": True,
        },
    }


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """Form fields of a ``multipart/form-data`` body: name -> (filename, content)."""
    if not content_type.startswith("multipart/form-data"):
        raise _Reply(400, "Content-Type must be multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename() or "", payload)
    return fields
