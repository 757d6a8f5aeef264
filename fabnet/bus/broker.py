"""Running Mosquitto for fabnet: find the binary, probe a login, and ``MosquittoBroker`` to run
one (stop, kill, restart on the same port with the same persistence). The files it reads are
written by ``fabnet.bus.mosquitto_conf`` (re-exported here)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fabnet.bus import dynsec
from fabnet.bus.mosquitto_conf import (
    ACL_FILE,
    CONFIG_FILE,
    DYNSEC,
    FILE,
    PASSWORD_FILE,
    BrokerFiles,
    _write_private,
    acl_text,
    broker_config,
    config_text,
    password_hash,
    write_acl_file,
    write_password_file,
)
from fabnet.bus.tls import DEFAULT_TLS_PORT, TlsFiles
from fabnet.errors import ConfigError, Conflict, ToolFailed, ToolMissing

__all__ = [
    "ACL_FILE",
    "CONFIG_FILE",
    "DYNSEC",
    "FILE",
    "PASSWORD_FILE",
    "BrokerFiles",
    "MosquittoBroker",
    "acl_text",
    "broker_config",
    "check_login",
    "config_text",
    "find_mosquitto",
    "free_port",
    "password_hash",
    "write_acl_file",
    "write_password_file",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with `apt-get install mosquitto` (or `make test`, which installs it)"


def find_mosquitto(search_path: str | None = None) -> str:
    """Path of the mosquitto binary on ``search_path`` (default: $PATH, then the sbin folders
    Debian installs it in); raises ToolMissing saying how to install it."""
    if search_path is None:
        search_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which("mosquitto", path=search_path)
    if found is None:
        raise ToolMissing(f"mosquitto (the MQTT broker) is not installed: {INSTALL_HINT}")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_login(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    timeout_s: float = 5.0,
    client_id: str | None = None,
) -> bool:
    """True if the broker accepts an MQTT v5 login with these credentials (None: anonymous)
    within ``timeout_s``, as ``client_id`` (default: the username, the one client id the broker
    lets an agent use; beware that this displaces a live connection with that id). Raises
    OSError if nothing listens there."""
    verdict: list[bool] = []
    answered = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        verdict.append(not rc.is_failure)
        answered.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or username or f"fabnet-probe-{secrets.token_hex(6)}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        answered.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return bool(verdict and verdict[0])


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime in ns) of ``path``, None if it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return False
    return True


class MosquittoBroker:
    """A Mosquitto process on 127.0.0.1 with config, users, ACL, persistence and log in
    ``data_dir``. ``port=None`` picks a free port on first start and keeps it for restarts.

    With ``users`` ({username: password}, the hub's included) the password file and ACL
    (``accounts="file"``) or the dynamic-security plugin's JSON (``"dynsec"``: the hub user is
    its admin, ``admin()`` manages agents at run time) are written; without, ``data_dir`` must
    already hold them (as ``fabnet broker-config`` writes). With ``tls`` a TLS listener is added
    on ``tls_port`` (a free one when None). ``bind_client_ids`` (see ``config_text``) is off
    only for test brokers that take several connections per username.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        users: Mapping[str, str] | None = None,
        hub_user: str = "hub",
        accounts: str = FILE,
        tls: TlsFiles | None = None,
        tls_port: int | None = None,
        start_timeout_s: float = 10.0,
        bind_client_ids: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._port = port
        self._fixed_port = port is not None
        self.start_timeout_s = start_timeout_s
        self._binary = find_mosquitto()
        self._proc: subprocess.Popen[bytes] | None = None
        self.accounts, self.hub_user = accounts, hub_user
        self.tls, self._tls_port = tls, tls_port
        self.bind_client_ids = bind_client_ids
        self._hub_password = users.get(hub_user) if users else None
        if users is not None and accounts == DYNSEC:
            agents = {u: p for u, p in users.items() if u != hub_user}
            dynsec.write_config(
                self.data_dir / dynsec.CONFIG_FILE, hub_user, users[hub_user], agents
            )
        elif users is not None:
            self.set_users(users, hub_user)
        needed = (dynsec.CONFIG_FILE,) if accounts == DYNSEC else (PASSWORD_FILE, ACL_FILE)
        for name in needed:
            if not (self.data_dir / name).is_file():
                raise ConfigError(f"{self.data_dir / name} is missing: run fabnet broker-config")

    @property
    def port(self) -> int:
        if self._port is None:
            raise Conflict("the broker has no port before its first start")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_port(self) -> int:
        if self.tls is None or self._tls_port is None:
            raise Conflict("the broker has no TLS listener (or has not started yet)")
        return self._tls_port

    def admin(self, timeout_s: float = 10.0) -> dynsec.DynsecAdmin:
        """The dynamic-security admin connection (the hub user's), over the plain listener."""
        if self.accounts != DYNSEC or not self._hub_password:
            raise Conflict("admin() needs accounts='dynsec' and the hub's password in users")
        return dynsec.DynsecAdmin(
            self.host, self.port, self.hub_user, self._hub_password, timeout_s=timeout_s
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def set_users(self, users: Mapping[str, str], hub_user: str = "hub") -> None:
        """Rewrite the password file and ACL; a running broker re-reads them (SIGHUP)."""
        if self.accounts == DYNSEC:
            raise Conflict("a dynamic-security broker takes users over $CONTROL: use admin()")
        write_password_file(self.data_dir / PASSWORD_FILE, users)
        write_acl_file(self.data_dir / ACL_FILE, hub_user)
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGHUP)

    def start(self) -> None:
        """Start mosquitto and wait until its port accepts connections. Raises Conflict if it
        runs already, ToolFailed (with its output) if it exits or does not listen in time."""
        if self.running:
            raise Conflict(f"mosquitto already runs on port {self._port}")
        for _ in range(3):
            if self._port is None:
                self._port = free_port(self.host)
            if self.tls is not None and self._tls_port is None:
                self._tls_port = free_port(self.host)
            try:
                self._spawn()
                return
            except ToolFailed as exc:
                if self._fixed_port or "in use" not in exc.output:
                    raise
                log.info("port %d was taken meanwhile; trying another", self._port)
                self._port = None
        raise ToolFailed("mosquitto found no free port in 3 tries")

    def _spawn(self) -> None:
        text = config_text(
            self.data_dir,
            self.port,
            accounts=self.accounts,
            tls=self.tls,
            tls_port=self._tls_port or DEFAULT_TLS_PORT,
            tls_bind=self.host,
            bind_client_ids=self.bind_client_ids,
        )
        conf = _write_private(self.data_dir / CONFIG_FILE, text)
        stderr_path = self.data_dir / "mosquitto.stderr"
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        from fabnet.lifetime import tied_popen  # dies with its parent, even on SIGKILL

        with open(stderr_path, "wb") as stderr:
            self._proc = tied_popen(
                [self._binary, "-c", str(conf)],
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            # Ready = its own log says "running" and the port answers. The port alone is not
            # enough: another process may listen there while mosquitto fails to bind.
            new_log = self._log_since(log_offset)
            if self._proc.poll() is not None or "Error:" in new_log:
                self.kill()
                output = stderr_path.read_text(errors="replace") + new_log
                raise ToolFailed(f"mosquitto exited at start (port {self.port})", output)
            if " running" in new_log and _accepts(self.host, self.port):
                log.info("mosquitto pid %d listens on %s", self._proc.pid, self.url)
                return
            time.sleep(0.02)
        self.kill()
        raise ToolFailed(
            f"mosquitto did not listen on port {self.port} within {self.start_timeout_s:g} s",
            self._log_since(log_offset),
        )

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def save(self, timeout_s: float = 5.0) -> None:
        """Make mosquitto write its persistence file now (SIGUSR1) and wait until the new file
        is in place, so that a following ``kill`` loses nothing. Raises Conflict if it is not
        running, ToolFailed if it did not save within ``timeout_s``."""
        if self._proc is None or not self.running:
            raise Conflict("mosquitto is not running")
        db = self.data_dir / "mosquitto.db"
        before = _identity(db)
        self._proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        # mosquitto writes mosquitto.db.new and renames it over mosquitto.db when complete
        while _identity(db) == before or db.with_name(db.name + ".new").exists():
            if time.monotonic() > deadline:
                raise ToolFailed(f"mosquitto did not save {db} within {timeout_s:g} s")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file) and wait; SIGKILL if it lingers."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("mosquitto pid %d ignored SIGTERM; killing it", self._proc.pid)
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: what was not yet saved is lost (the config saves after every
        change, at the end of the broker loop iteration that made it)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
