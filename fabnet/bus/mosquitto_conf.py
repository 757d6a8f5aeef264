"""What Mosquitto reads for fabnet: the password file (``$7$`` PBKDF2-SHA512), the pattern ACL
of DESIGN.md §3 or the dynamic-security plugin's state, and ``mosquitto.conf`` — for
``fabnet broker-config`` and for ``MosquittoBroker``."""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabnet.bus import dynsec
from fabnet.bus import tls as bus_tls
from fabnet.bus.messages import MAX_PAYLOAD_BYTES
from fabnet.bus.tls import DEFAULT_TLS_PORT, TlsFiles
from fabnet.bus.topics import agent_acl_patterns, check_id, hub_acl_filter
from fabnet.errors import InvalidInput

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12  # as mosquitto_passwd
PACKET_MARGIN_BYTES = 8 * 1024  # topic, properties and headers on top of the largest payload
PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
CONFIG_FILE = "mosquitto.conf"
FILE, DYNSEC = "file", "dynsec"  # how the broker knows its users (hub.toml [broker] accounts)


def password_hash(
    password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """Mosquitto 2.0's ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`` string."""
    if not password:
        raise InvalidInput("a broker password must not be empty")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def _write_private(path: Path, text: str) -> Path:
    """Write ``text`` readable by the owner only, replacing ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
    return path


def write_password_file(path: Path, users: Mapping[str, str]) -> Path:
    """Write Mosquitto's password file for ``{username: password}``; usernames must be ids
    (they appear in ACL topics). Raises InvalidInput naming a bad user or an empty password."""
    lines = []
    for user, password in sorted(users.items()):
        check_id(user, "broker username")
        if not password:
            raise InvalidInput(f"broker password of {user!r} must not be empty")
        lines.append(f"{user}:{password_hash(password)}\n")
    return _write_private(path, "".join(lines))


def acl_text(hub_user: str) -> str:
    """The ACL of DESIGN.md §3: each agent writes only under its own subtree and reads only its
    own commands; everyone reads the hub's status; the hub reads and writes all of fabnet/v1."""
    check_id(hub_user, "hub user")
    patterns = "".join(f"pattern {access} {p}\n" for access, p in agent_acl_patterns())
    return (
        "# fabnet broker ACL (generated). %u is the connecting username = the agent id.\n"
        f"{patterns}\nuser {hub_user}\ntopic readwrite {hub_acl_filter()}\n"
    )


def write_acl_file(path: Path, hub_user: str) -> Path:
    """Write the fabnet ACL (see ``acl_text``) to ``path``."""
    return _write_private(path, acl_text(hub_user))


def _auth_lines(data: Path, accounts: str, bind_client_ids: bool) -> list[str]:
    """Who may log in and what they may do: the password file and ACL (``file``), or the
    dynamic-security plugin with its state in ``data`` (``dynsec``).

    Client ids are tied to usernames so that no agent can take over another's (or the hub's)
    session by naming its client id (issue 13): the plugin binds each agent's client to its
    own client id (see ``dynsec``); with a password file the only way Mosquitto 2.0 has is
    ``use_username_as_clientid``, which makes every connection's client id its username — so
    one connection per username, and several hub processes need the plugin."""
    if accounts == DYNSEC:
        return dynsec.conf_lines(data / dynsec.CONFIG_FILE)
    if accounts != FILE:
        raise InvalidInput(f"broker accounts must be {FILE!r} or {DYNSEC!r}, got {accounts!r}")
    lines = [f"password_file {data / PASSWORD_FILE}", f"acl_file {data / ACL_FILE}"]
    return [*lines, "use_username_as_clientid true"] if bind_client_ids else lines


def config_text(
    data_dir: Path,
    port: int,
    *,
    bind: str = "127.0.0.1",
    autosave_changes: int = 1,
    accounts: str = FILE,
    tls: TlsFiles | None = None,
    tls_port: int = DEFAULT_TLS_PORT,
    tls_bind: str | None = None,
    bind_client_ids: bool = True,
) -> str:
    """A mosquitto.conf with one authenticated listener on ``bind`` (plus, with ``tls``, a TLS
    listener on ``tls_port``, all interfaces unless ``tls_bind``), users and ACL as ``accounts``
    says, persistence in ``data_dir`` and a log. ``bind_client_ids=False`` (tests that open
    several connections per user only) leaves a password-file broker's client ids free.

    Persistence is saved after every ``autosave_changes`` changes (``autosave_on_changes``:
    Mosquitto counts subscription changes, retained messages and queued messages, and saves
    when the count reaches ``autosave_interval``), not every so many seconds: with 1, a message
    queued for an offline hub or agent is on disk by the end of the broker's loop iteration
    that queued it, so a broker SIGKILL no longer loses it (issue 9). Each save rewrites the
    whole file, so its cost grows with what the broker holds."""
    data = Path(data_dir).resolve()
    head = "users/ACL: $CONTROL/dynamic-security/v1" if accounts == DYNSEC else "reload: SIGHUP"
    return "\n".join(
        [
            f"# Mosquitto for fabnet (generated by fabnet); {head}.",
            "per_listener_settings false",
            f"listener {port} {bind}",
            *(bus_tls.listener_lines(tls_port, tls, tls_bind) if tls else []),
            "allow_anonymous false",
            *_auth_lines(data, accounts, bind_client_ids),
            f"max_packet_size {MAX_PAYLOAD_BYTES + PACKET_MARGIN_BYTES}",
            "max_queued_messages 100000",  # per offline session; the default 1000 loses events
            "set_tcp_nodelay true",
            "persistence true",
            f"persistence_location {data}/",
            "persistence_file mosquitto.db",
            "autosave_on_changes true",
            f"autosave_interval {autosave_changes}",
            f"log_dest file {data / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            # only matters when started as root: stay this user so the data dir stays ours
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "",
        ]
    )


@dataclass(frozen=True)
class BrokerFiles:
    """What ``broker_config`` wrote: passwd + acl (``file``) or the plugin's JSON (``dynsec``)."""

    config_file: Path
    password_file: Path | None = None
    acl_file: Path | None = None
    dynsec_file: Path | None = None
    tls: TlsFiles | None = None


def broker_config(
    out_dir: Path,
    users: Mapping[str, str],
    hub_user: str = "hub",
    port: int = 1883,
    *,
    accounts: str = FILE,
    tls_names: Sequence[str] = (),
    tls_port: int = DEFAULT_TLS_PORT,
) -> BrokerFiles:
    """Write the broker's users and ACL and a sample ``mosquitto.conf`` into ``out_dir``.
    ``users`` maps every broker username (the hub's and each agent id) to its password. With
    ``tls_names`` (the host names / addresses agents reach the broker by) a test CA, a server
    certificate and a TLS listener on ``tls_port`` are added."""
    if hub_user not in users:
        raise InvalidInput(f"hub user {hub_user!r} has no password among the users")
    out = Path(out_dir).resolve()
    pki = bus_tls.generate_test_pki(out, tls_names) if tls_names else None
    if accounts == DYNSEC:
        agents = {u: p for u, p in users.items() if u != hub_user}
        files = BrokerFiles(
            out / CONFIG_FILE,
            dynsec_file=dynsec.write_config(
                out / dynsec.CONFIG_FILE, hub_user, users[hub_user], agents
            ),
            tls=pki,
        )
    else:
        files = BrokerFiles(
            out / CONFIG_FILE,
            password_file=write_password_file(out / PASSWORD_FILE, users),
            acl_file=write_acl_file(out / ACL_FILE, hub_user),
            tls=pki,
        )
    text = config_text(out, port, accounts=accounts, tls=pki, tls_port=tls_port)
    _write_private(files.config_file, text)
    return files
