"""OctoPrint driver through ``octorest`` (0.4): upload to ``local``, print, poll job and printer.

octorest calls were checked against OctoPrint's REST documentation (job, files, printer). Two
gaps are worked around here: octorest turns every non-2xx answer into a bare RuntimeError, so
the session records the last response to recover status and reason; and ``OctoRest.upload``
sends ``select``/``print`` as ``json=`` next to ``files=``, which requests silently drops for a
multipart body, so the upload goes through octorest's own session with proper form fields.
Cancel relies on OctoPrint's own ``afterPrintCancelled`` script (heaters and fan off).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from octorest import OctoRest

from fabnet.drivers.base import DriverError, DriverState, Progress, Status, Telemetry
from fabnet.drivers.octoprint_states import map_state
from fabnet.errors import Conflict, DeviceError, DeviceTimeout, InvalidInput, NotFound

log = logging.getLogger(__name__)
T = TypeVar("T")


def _reason(response: requests.Response) -> str:
    """OctoPrint's reason for a refusal: ``{"error": ...}`` JSON, else the body text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text.strip()


def _temps(temperature: dict[str, Any], key: str) -> tuple[float, float] | None:
    entry = temperature.get(key)
    if not isinstance(entry, dict) or entry.get("actual") is None:
        return None
    return float(entry["actual"]), float(entry.get("target") or 0.0)


class OctoPrintDriver:
    """One printer behind an OctoPrint server at ``url`` with an API key.

    Raises DeviceError (403 key refused, unexpected answers), DeviceTimeout (server
    unreachable), Conflict (409: OctoPrint's state forbids the action, with its reason).
    """

    def __init__(self, url: str, api_key: str | None, *, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"url must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._lock = threading.RLock()  # one HTTP exchange at a time: _last_response is shared
        self._client: OctoRest | None = None
        self._last_response: requests.Response | None = None
        self._job_name: str | None = None
        self._job_finished = False
        self._state = DriverState.DISCONNECTED

    # ---- HTTP plumbing -----------------------------------------------------------------

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(self._remember)
        original = session.request

        def request_with_timeout(*args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", self.timeout_s)
            return original(*args, **kwargs)

        session.request = request_with_timeout  # type: ignore[method-assign]
        return session

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one octorest call; map OctoPrint's refusals onto fabnet errors."""
        with self._lock:
            self._last_response = None
            try:
                return call()
            except requests.RequestException as exc:
                raise DeviceTimeout(f"OctoPrint at {self.url} unreachable ({what}): {exc}") from exc
            except RuntimeError as exc:  # octorest's _check_response: any status outside 2xx
                response = self._last_response
                if response is None:
                    raise DeviceError(f"OctoPrint {what} failed: {exc}") from exc
                raise self._refusal(what, response) from exc

    def _refusal(self, what: str, response: requests.Response) -> Exception:
        reason = _reason(response)
        raw = f"{response.status_code} {reason}"
        if response.status_code == 403:
            return DeviceError("OctoPrint refused the API key (403)", raw)
        if response.status_code == 409:
            return Conflict(f"OctoPrint refused {what}: {reason}")
        if response.status_code == 404:
            return NotFound(f"OctoPrint {what}: {reason}")
        return DeviceError(f"OctoPrint {what} failed with {response.status_code}: {reason}", raw)

    def _open_client(self) -> OctoRest:
        client = OctoRest(url=self.url, session=self._session())
        if self.api_key:
            client.load_api_key(self.api_key)  # sets X-Api-Key, checks it with GET /api/version
        else:
            client.version = client.get_version()  # OctoPrint answers 403 without a key
        return client

    def _require_client(self) -> OctoRest:
        if self._client is None:
            raise Conflict(f"OctoPrint at {self.url} is not connected")
        return self._client

    # ---- the Driver interface --------------------------------------------------------------

    def connect(self) -> None:
        """Check the key with ``GET /api/version``; raises DeviceError on 403."""
        with self._lock:
            self._state = DriverState.CONNECTING
            try:
                client = self._call("the API key check", self._open_client)
            except Exception:
                self._state = DriverState.DISCONNECTED
                raise
            self._client = client
            log.info("connected to %s at %s", client.version.get("text"), self.url)
            self._state = self.status().state

    def disconnect(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.session.close()
            self._client, self._state = None, DriverState.DISCONNECTED

    def status(self) -> Status:
        """``GET /api/job`` and, when operational, ``GET /api/printer`` (409 tolerated)."""
        with self._lock:
            if self._client is None:
                return Status(DriverState.DISCONNECTED, Progress(), Telemetry())
            client = self._client
            job = self._call("the job query", client.job_info)
            state, message = map_state(job.get("state"))
            progress = self._progress(job)
            state = self._job_outcome(state, job)
            telemetry = Telemetry()
            if state not in (DriverState.DISCONNECTED, DriverState.CONNECTING, DriverState.ERROR):
                telemetry = self._telemetry(client)
            error = None
            if message is not None or job.get("error"):
                error = DriverError(message or str(job["error"]), job.get("error") or job["state"])
            self._state = state
            return Status(state, progress, telemetry, error)

    def _job_outcome(self, state: DriverState, job: dict[str, Any]) -> DriverState:
        """OctoPrint says Operational both before and after a job; DONE when ours completed."""
        name = (job.get("job") or {}).get("file", {}).get("name")
        completion = (job.get("progress") or {}).get("completion")
        if state is DriverState.IDLE and self._job_name is not None and name == self._job_name:
            if completion is not None and completion >= 100.0:
                self._job_finished = True
        if state is DriverState.IDLE and self._job_finished:
            return DriverState.DONE
        return state

    @staticmethod
    def _progress(job: dict[str, Any]) -> Progress:
        progress = job.get("progress") or {}
        file = (job.get("job") or {}).get("file") or {}
        return Progress(
            bytes_done=int(progress.get("filepos") or 0),
            bytes_total=int(file.get("size") or 0),
            elapsed_s=float(progress.get("printTime") or 0.0),
            remaining_s=(
                float(progress["printTimeLeft"])
                if progress.get("printTimeLeft") is not None
                else None
            ),
        )

    def _telemetry(self, client: OctoRest) -> Telemetry:
        try:
            printer = self._call("the printer query", client.printer)
        except Conflict:  # 409 "Printer is not operational", e.g. just after a reconnect
            return Telemetry()
        temperature = printer.get("temperature") or {}
        flags = (printer.get("state") or {}).get("flags") or {}
        extra = {name: str(value).lower() for name, value in flags.items()}
        return Telemetry(
            hotend_c=_temps(temperature, "tool0"), bed_c=_temps(temperature, "bed"), extra=extra
        )

    def start(self, gcode_file: Path) -> None:
        """Upload to ``local`` with select and print; Conflict if OctoPrint did not start it."""
        path = Path(gcode_file)
        if not path.is_file():
            raise NotFound(f"G-code file {path} does not exist")
        with self._lock:
            client = self._require_client()
            current = self.status().state
            if current not in (DriverState.IDLE, DriverState.DONE):
                raise Conflict(f"cannot start a job: OctoPrint at {self.url} is {current.value}")
            result = self._call("the upload", lambda: self._upload(client, path))
            if not result.get("effectivePrint"):
                raise Conflict(
                    f"OctoPrint stored {path.name} but did not start it "
                    f"(printer state: {self.status().state.value})"
                )
            self._job_name, self._job_finished = path.name, False
            self._state = DriverState.RUNNING
        log.info("OctoPrint at %s is printing %s", self.url, path.name)

    def _upload(self, client: OctoRest, path: Path) -> dict[str, Any]:
        # octorest 0.4 upload() passes select/print as json= beside files=; requests then
        # builds the multipart body from files alone and OctoPrint never sees the flags.
        # Same endpoint and session, with the flags as the form fields the docs specify.
        with path.open("rb") as handle:
            response = client.session.post(
                f"{client.url}/api/files/local",
                files={"file": (path.name, handle, "application/octet-stream")},
                data={"select": "true", "print": "true"},
            )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"upload answered {response.status_code}")  # mapped by _call
        body: dict[str, Any] = response.json()
        return body

    def pause(self) -> None:
        """``{"command": "pause", "action": "pause"}``; Conflict (409) when not printing."""
        self._call("pause", self._require_client().pause)

    def resume(self) -> None:
        """``{"command": "pause", "action": "resume"}``; Conflict (409) when not printing."""
        self._call("resume", self._require_client().resume)

    def cancel(self) -> None:
        """``{"command": "cancel"}``; OctoPrint's cancel script turns heaters and fan off."""
        self._call("cancel", self._require_client().cancel)
        with self._lock:
            self._job_finished = False
