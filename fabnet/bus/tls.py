"""MQTT over TLS: a CA and a server certificate for a test network (``broker-config --tls``),
the listener lines Mosquitto needs, and the client side — paho's ``tls_set`` with certificate
and hostname verification always on — with failures turned into sentences a person can act on.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from fabnet.errors import ConfigError, InvalidInput

DEFAULT_TLS_PORT = 8883
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CERT_DAYS = 825  # the longest validity clients accept for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    """A test network's PKI: the CA agents and the hub trust (``ca_file``) and the broker's
    own certificate and key."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, folder: Path) -> TlsFiles:
        folder = Path(folder).resolve()
        return cls(folder / CA_CERT, folder / CA_KEY, folder / SERVER_CERT, folder / SERVER_KEY)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _subject_names(names: Sequence[str]) -> list[object]:
    """SubjectAlternativeName entries: IP addresses as IPs, everything else as DNS names."""
    from cryptography import x509

    entries: list[object] = []
    for name in dict.fromkeys(names):
        if not name:
            raise InvalidInput("a TLS server name must not be empty")
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _ca_usage(x509: Any) -> Any:
    """A CA key signs certificates and revocation lists, nothing else."""
    flags = dict.fromkeys(
        ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
         "key_agreement", "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    return x509.KeyUsage(key_cert_sign=True, crl_sign=True, **flags)


def generate_test_pki(out_dir: Path, names: Sequence[str], now: datetime | None = None) -> TlsFiles:
    """Write a new CA and a server certificate for ``names`` (host names and IP addresses the
    broker is reached by) into ``out_dir``; keys readable by the owner only. Raises InvalidInput
    if ``names`` is empty. ECDSA P-256, valid ``CERT_DAYS`` days from ``now``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names:
        raise InvalidInput("the server certificate needs at least one host name or address")
    files = TlsFiles.in_dir(out_dir)
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)  # tolerate small clock skew
    end = start + timedelta(days=CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fabnet test network CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(x509), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(_subject_names(names)), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    _write(files.ca_cert, ca_cert.public_bytes(pem), 0o644)
    _write(files.ca_key, ca_key.private_bytes(pem, pkcs8, plain), 0o600)
    _write(files.server_cert, cert.public_bytes(pem), 0o644)
    _write(files.server_key, key.private_bytes(pem, pkcs8, plain), 0o600)
    return files


def listener_lines(port: int, files: TlsFiles, bind: str | None = None) -> list[str]:
    """mosquitto.conf lines for a TLS listener on ``port`` (all interfaces unless ``bind``)."""
    where = f"{port} {bind}" if bind else str(port)
    return [
        f"listener {where}",
        f"cafile {files.ca_cert}",
        f"certfile {files.server_cert}",
        f"keyfile {files.server_key}",
        "tls_version tlsv1.2",
    ]


def check_ca_file(ca_file: Path | None, tls: bool) -> None:
    """Raise InvalidInput if ``ca_file`` is given without TLS or is not a readable file."""
    if ca_file is None:
        return
    if not tls:
        raise InvalidInput(
            f"ca_file {str(ca_file)!r} is set but the broker URL is mqtt://; use mqtts:// for TLS"
        )
    if not Path(ca_file).is_file():
        raise ConfigError(f"ca_file {str(ca_file)!r} does not exist or is not a file")


def configure_client(client: mqtt.Client, ca_file: Path | None) -> None:
    """Make ``client`` speak TLS: the server's certificate must chain to ``ca_file`` (None: the
    system's CAs) and name the host we connect to. Raises ConfigError for an unreadable CA."""
    check_ca_file(ca_file, tls=True)
    try:
        client.tls_set(
            ca_certs=str(ca_file) if ca_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    except ssl.SSLError as exc:
        raise ConfigError(f"ca_file {str(ca_file)!r} is not a PEM CA certificate: {exc}") from None
    client.tls_insecure_set(False)  # hostname checking stays on


def explain(exc: BaseException, host: str, ca_file: Path | None) -> str:
    """One line on why a (TLS) connection to ``host`` failed, saying what to check."""
    trust = f"ca_file {ca_file}" if ca_file else "the system's CAs (no ca_file set)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            return (
                f"TLS: the broker's certificate is not valid for {host!r} ({reason}); connect "
                "with a name the certificate lists (broker-config --tls-name)"
            )
        return f"TLS: the broker's certificate was not trusted by {trust} ({reason})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {host} failed: {exc.reason or exc} (is it a TLS listener?)"
    return f"cannot connect to the broker at {host}: {exc}"
