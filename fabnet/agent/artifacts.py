"""Fetching a task's G-code from the hub over HTTP and proving it is the file the hub meant.

The URL comes from an MQTT command, so it is only fetched from the hub's own host, the size is
capped before a byte is read, and nothing is kept unless its size and sha256 match.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from fabnet.errors import DeviceError, DeviceTimeout, InvalidInput

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Fabnet-Token"
MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class ArtifactRef:
    """Where a task's file is and what it must be: size in bytes, sha256 as lowercase hex."""

    url: str
    token: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class FetchSettings:
    """Per-request timeout (s), attempts in all, and the pause between attempts (s, doubled
    after each)."""

    timeout_s: float = 10.0
    attempts: int = 3
    backoff_s: float = 0.5


def _host(url: str) -> str:
    host = (urlparse(url).hostname or "").lower()
    return "localhost" if host in LOOPBACK_NAMES else host


def check_url(url: str, hub_url: str) -> None:
    """Raise InvalidInput unless ``url`` is http(s) on the same host as ``hub_url``
    (loopback names count as one host)."""
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise InvalidInput(f"artifact url must be http(s), got {url!r:.120}")
    if _host(url) != _host(hub_url):
        raise InvalidInput(
            f"artifact url host {urlparse(url).hostname!r} is not the hub's "
            f"({urlparse(hub_url).hostname!r})"
        )


def fetch_artifact(
    ref: ArtifactRef, dest: Path, hub_url: str, settings: FetchSettings = FetchSettings()
) -> Path:
    """Download ``ref`` to ``dest`` and verify it; returns ``dest``.

    Raises InvalidInput for a foreign URL, an oversized or wrong-size file, or a sha256
    mismatch ("artifact sha256 mismatch"); DeviceError when the hub refuses (HTTP 4xx, at
    once) or keeps failing (5xx, connection errors); DeviceTimeout when it keeps timing out.
    A partial or wrong file is never left at ``dest``.
    """
    check_url(ref.url, hub_url)
    if not 0 <= ref.size_bytes <= MAX_ARTIFACT_BYTES:
        raise InvalidInput(
            f"artifact size_bytes must be 0..{MAX_ARTIFACT_BYTES}, got {ref.size_bytes}"
        )
    delay = settings.backoff_s
    for attempt in range(1, settings.attempts + 1):
        try:
            return _download(ref, dest, settings.timeout_s)
        except _Refused:
            raise
        except DeviceError as exc:  # DeviceTimeout included: worth another try
            log.warning("fetching %s, attempt %d/%d: %s", ref.url, attempt, settings.attempts, exc)
            if attempt == settings.attempts:
                raise
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable: the last attempt raises")


class _Refused(DeviceError):
    """The hub said no (HTTP 4xx): asking again will not help."""


def _download(ref: ArtifactRef, dest: Path, timeout_s: float) -> Path:
    request = urllib.request.Request(ref.url, headers={TOKEN_HEADER: ref.token})
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout_s) as response,
            open(partial, "wb") as out,
        ):
            while chunk := response.read(CHUNK_BYTES):
                size += len(chunk)
                if size > ref.size_bytes:
                    raise InvalidInput(
                        f"artifact size mismatch: more than the announced {ref.size_bytes} bytes"
                    )
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        cls = _Refused if 400 <= exc.code < 500 else DeviceError
        raise cls(f"hub answered HTTP {exc.code} for the artifact", raw=str(exc.reason)) from None
    except TimeoutError as exc:
        partial.unlink(missing_ok=True)
        raise DeviceTimeout(f"artifact download timed out after {timeout_s:g} s") from exc
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise DeviceError(f"artifact download failed: {exc}") from exc
    except InvalidInput:
        partial.unlink(missing_ok=True)
        raise
    return _verify(ref, partial, dest, size, digest.hexdigest())


def _verify(ref: ArtifactRef, partial: Path, dest: Path, size: int, sha256: str) -> Path:
    if size != ref.size_bytes:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"artifact size mismatch: expected {ref.size_bytes} bytes, got {size}")
    if sha256 != ref.sha256.lower():
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"artifact sha256 mismatch: expected {ref.sha256}, got {sha256}")
    os.replace(partial, dest)
    return dest
