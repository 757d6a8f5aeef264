"""Signed HTTP messages between hubs: a small, fixed profile of HTTP Message Signatures
(RFC 9421) with Ed25519, the body bound by ``Content-Digest`` (RFC 9530).

Why this shape: RFC 9421 is the IETF standard for signing HTTP requests and responses (used by
ActivityPub servers and others), so the headers and the signature base are ones other tools can
read and check; only a fixed subset is implemented, so there is no parser for the general
Structured Fields grammar to get wrong. A request carries

    Fabnet-Hub: <sender's hub name>
    Content-Digest: sha-256=:<base64 sha256 of the body>:
    Signature-Input: fed=("@method" "@path" "@query" "content-digest" "fabnet-hub");created=<unix s>;nonce="<random>";keyid="<key id>";alg="ed25519"
    Signature: fed=:<base64 Ed25519 signature of the signature base>:

and the signature base is RFC 9421 §2.5's: one ``"<component>": <value>`` line per covered
component, then ``"@signature-params": <the Signature-Input value>``. The answer of the peer
is signed the same way over ``"@status" "content-digest" "fabnet-hub"``, carrying the
request's nonce, so a caller knows the answer is the peer's and is for its own request.

Everything here is pure (time comes in as an argument); which peers and nonces are accepted is
decided by ``fabnet.federation.inbound``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fabnet.errors import FabnetError
from fabnet.federation.keys import HubKey, PublicKey

LABEL = "fed"
ALG = "ed25519"
HUB_HEADER = "Fabnet-Hub"
DIGEST_HEADER = "Content-Digest"
INPUT_HEADER = "Signature-Input"
SIGNATURE_HEADER = "Signature"
REQUEST_COMPONENTS = ("@method", "@path", "@query", "content-digest", "fabnet-hub")
RESPONSE_COMPONENTS = ("@status", "content-digest", "fabnet-hub")
NONCE_BYTES = 18  # 24 base64url characters
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_INPUT = re.compile(
    r'^fed=\((?P<components>(?:"[a-z@-]+" ?)*)\)'
    r'(?P<params>(?:;[a-z]+=(?:-?\d{1,15}|"[A-Za-z0-9_.:+/=-]{0,80}"))*)$'
)
_PARAM = re.compile(r';([a-z]+)=(-?\d+|"[^"]*")')
_SIGNATURE = re.compile(r"^fed=:(?P<b64>[A-Za-z0-9+/=]{1,200}):$")
_DIGEST = re.compile(r"^sha-256=:(?P<b64>[A-Za-z0-9+/=]{44}):$")


class SignatureRefused(FabnetError):
    """A signed message was refused; ``status`` is 401 (who or what cannot be trusted) or 403
    (a known peer not allowed now)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SignatureParams:
    """The parameters of a ``Signature-Input`` as given, in their order."""

    components: tuple[str, ...]
    created: int
    nonce: str
    keyid: str
    alg: str
    serialized: str  # the value after ``fed=``, re-serialized from the parsed items


def content_digest(body: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def _params_text(components: tuple[str, ...], params: Mapping[str, int | str]) -> str:
    inner = " ".join(f'"{c}"' for c in components)
    items = "".join(f";{k}={v}" if isinstance(v, int) else f';{k}="{v}"' for k, v in params.items())
    return f"({inner}){items}"


def signature_base(values: Mapping[str, str], params_text: str) -> bytes:
    """RFC 9421 §2.5: the covered components' lines, then ``@signature-params``."""
    lines = [f'"{name}": {value}' for name, value in values.items()]
    lines.append(f'"@signature-params": {params_text}')
    return "\n".join(lines).encode()


def request_values(method: str, path: str, query: str, digest: str, hub: str) -> dict[str, str]:
    return {
        "@method": method.upper(),
        "@path": path,
        "@query": f"?{query}",
        "content-digest": digest,
        "fabnet-hub": hub,
    }


def response_values(status: int, digest: str, hub: str) -> dict[str, str]:
    return {"@status": str(status), "content-digest": digest, "fabnet-hub": hub}


def _sign(key: HubKey, hub: str, values: Mapping[str, str], components: tuple[str, ...],
          created: int, nonce: str, digest: str) -> dict[str, str]:  # fmt: skip
    params: dict[str, int | str] = {"created": created, "nonce": nonce, "keyid": key.key_id,
                                    "alg": ALG}  # fmt: skip
    text = _params_text(components, params)
    signature = key.sign(signature_base(values, text))
    return {
        HUB_HEADER: hub,
        DIGEST_HEADER: digest,
        INPUT_HEADER: f"{LABEL}={text}",
        SIGNATURE_HEADER: f"{LABEL}=:{base64.b64encode(signature).decode()}:",
    }


def sign_request(key: HubKey, hub: str, method: str, path: str, query: str, body: bytes,
                 created: int, nonce: str) -> dict[str, str]:  # fmt: skip
    """The headers that sign this request as hub ``hub`` at unix time ``created``."""
    digest = content_digest(body)
    values = request_values(method, path, query, digest, hub)
    return _sign(key, hub, values, REQUEST_COMPONENTS, created, nonce, digest)


def sign_response(key: HubKey, hub: str, status: int, body: bytes, created: int,
                  request_nonce: str) -> dict[str, str]:  # fmt: skip
    """The headers that sign an answer to the request whose nonce was ``request_nonce``."""
    digest = content_digest(body)
    values = response_values(status, digest, hub)
    return _sign(key, hub, values, RESPONSE_COMPONENTS, created, request_nonce, digest)


def lower_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers keyed by their lower-case names, as ``header`` looks them up."""
    return {name.lower(): value for name, value in items}


def header(headers: Mapping[str, str], name: str) -> str:
    """Header ``name`` of ``headers`` (keyed lower-case); SignatureRefused when missing."""
    value = headers.get(name.lower())
    if value is None:
        raise SignatureRefused(f"unsigned: header {name} is missing")
    return value


def parse_params(text: str, components: tuple[str, ...]) -> SignatureParams:
    """The ``Signature-Input`` value ``text``; SignatureRefused naming what is wrong."""
    match = _INPUT.match(text.strip())
    if match is None:
        raise SignatureRefused(f"{INPUT_HEADER} is not of the form fed=(...);created=...: "
                               f"{text!r:.200}")  # fmt: skip
    given = tuple(re.findall(r'"([a-z@-]+)"', match.group("components")))
    if given != components:
        raise SignatureRefused(
            f"{INPUT_HEADER} must cover {' '.join(components)}, covers {' '.join(given)}"
        )
    params: dict[str, int | str] = {}
    for name, raw in _PARAM.findall(match.group("params")):
        if name in params:
            raise SignatureRefused(f"{INPUT_HEADER}: parameter {name} given twice")
        params[name] = raw.strip('"') if raw.startswith('"') else int(raw)
    created, nonce = params.get("created"), params.get("nonce")
    keyid, alg = params.get("keyid"), params.get("alg")
    if not isinstance(created, int):
        raise SignatureRefused(f"{INPUT_HEADER}: created (unix seconds) is missing")
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise SignatureRefused(f"{INPUT_HEADER}: nonce must be 16-64 base64url characters")
    if not isinstance(keyid, str) or not keyid:
        raise SignatureRefused(f"{INPUT_HEADER}: keyid is missing")
    if alg != ALG:
        raise SignatureRefused(f"{INPUT_HEADER}: alg must be {ALG}, got {alg!r}")
    return SignatureParams(given, created, nonce, keyid, alg, _params_text(given, params))


def parse_signature(text: str) -> bytes:
    match = _SIGNATURE.match(text.strip())
    if match is None:
        raise SignatureRefused(f"{SIGNATURE_HEADER} is not of the form fed=:<base64>:")
    try:
        return base64.b64decode(match.group("b64"), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused(f"{SIGNATURE_HEADER}: not valid base64") from None


def check_digest(headers: Mapping[str, str], body: bytes) -> str:
    """The ``Content-Digest`` value, if it is the body's; SignatureRefused otherwise."""
    digest = header(headers, DIGEST_HEADER).strip()
    if not _DIGEST.match(digest):
        raise SignatureRefused(f"{DIGEST_HEADER} must be sha-256=:<base64>:, got {digest!r:.100}")
    if digest != content_digest(body):
        raise SignatureRefused(f"the body does not match its {DIGEST_HEADER} (altered?)")
    return digest


def check_clock(created: int, now_s: float, max_skew_s: float) -> None:
    if abs(now_s - created) > max_skew_s:
        raise SignatureRefused(
            f"signature created {created} is {now_s - created:+.0f} s from this hub's clock "
            f"(allowed ±{max_skew_s:.0f} s): check both hubs' clocks (NTP)"
        )


def check_signature(key: PublicKey, values: Mapping[str, str], params: SignatureParams,
                    signature: bytes, who: str) -> None:  # fmt: skip
    if params.keyid != key.key_id:
        raise SignatureRefused(f"key {params.keyid} is not {who}'s key ({key.key_id})")
    if not key.verify(signature, signature_base(values, params.serialized)):
        raise SignatureRefused(f"bad signature: not made by {who}'s key over this message")


def verify_response(key: PublicKey, peer: str, status: int, headers: Mapping[str, str],
                    body: bytes, request_nonce: str, now_s: float,
                    max_skew_s: float) -> None:  # fmt: skip
    """Check that an answer was signed by ``peer`` (``key``) for the request whose nonce was
    ``request_nonce``; SignatureRefused naming the problem otherwise."""
    hub = header(headers, HUB_HEADER)
    if hub != peer:
        raise SignatureRefused(f"the answer is signed as hub {hub!r}, expected {peer!r}")
    params = parse_params(header(headers, INPUT_HEADER), RESPONSE_COMPONENTS)
    signature = parse_signature(header(headers, SIGNATURE_HEADER))
    digest = check_digest(headers, body)
    if params.nonce != request_nonce:
        raise SignatureRefused("the answer is for another request (nonce differs)")
    check_clock(params.created, now_s, max_skew_s)
    check_signature(key, response_values(status, digest, hub), params, signature, peer)
