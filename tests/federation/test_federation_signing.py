"""Keys and the signed-message profile on their own: the key file is made once, private to its
owner, and refused when others may read it; a signature covers method, path, query, body,
hub name, time and nonce, and an answer is bound to its request."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fabnet.errors import ConfigError, InvalidInput
from fabnet.federation import signing as sg
from fabnet.federation.keys import HubKey, PublicKey, parse_public_key

NOW = 1_800_000_000
NONCE = "abcdefghijklmnopqrstuvwx"


def test_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "fed" / "hub_ed25519.pem"
    key = HubKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = HubKey.load_or_create(path)
    assert again.public == key.public and again.key_id == key.key_id
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by its owner only"):
        HubKey.load_or_create(path)


def test_public_key_text_and_pem_are_the_same_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = HubKey.generate()
    pem = Ed25519PublicKey.from_public_bytes(key.public.raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert parse_public_key(pem.decode()) == key.public == parse_public_key(key.public.text)
    for bad in ("not base64!", "AAAA", ""):
        with pytest.raises(InvalidInput, match="key"):
            parse_public_key(bad)


def _verify(key: PublicKey, headers: dict[str, str], method: str, path: str, query: str,
            body: bytes) -> None:  # fmt: skip
    h = sg.lower_headers(headers.items())
    params = sg.parse_params(sg.header(h, sg.INPUT_HEADER), sg.REQUEST_COMPONENTS)
    digest = sg.check_digest(h, body)
    values = sg.request_values(method, path, query, digest, sg.header(h, sg.HUB_HEADER))
    sg.check_signature(key, values, params, sg.parse_signature(sg.header(h, sg.SIGNATURE_HEADER)),
                       "alpha")  # fmt: skip


def test_signature_covers_every_part_of_the_request() -> None:
    key = HubKey.generate()
    headers = sg.sign_request(
        key, "alpha", "POST", "/federation/v1/hello", "a=1", b"{}", NOW, NONCE
    )
    assert headers[sg.INPUT_HEADER].startswith('fed=("@method" "@path" "@query" "content-digest"')
    _verify(key.public, headers, "POST", "/federation/v1/hello", "a=1", b"{}")  # as signed
    changes = [("PUT", "/federation/v1/hello", "a=1"), ("POST", "/federation/v1/other", "a=1"),
               ("POST", "/federation/v1/hello", "a=2")]  # fmt: skip
    for method, path, query in changes:
        with pytest.raises(sg.SignatureRefused, match="bad signature"):
            _verify(key.public, headers, method, path, query, b"{}")
    with pytest.raises(sg.SignatureRefused, match="does not match"):
        _verify(key.public, headers, "POST", "/federation/v1/hello", "a=1", b'{"x": 1}')
    with pytest.raises(sg.SignatureRefused, match="is not alpha's key"):
        _verify(HubKey.generate().public, headers, "POST", "/federation/v1/hello", "a=1", b"{}")
    renamed = {**headers, sg.HUB_HEADER: "gamma"}
    with pytest.raises(sg.SignatureRefused, match="bad signature"):
        _verify(key.public, renamed, "POST", "/federation/v1/hello", "a=1", b"{}")
    later = headers[sg.INPUT_HEADER].replace(f"created={NOW}", f"created={NOW + 5}")
    with pytest.raises(sg.SignatureRefused, match="bad signature"):
        _verify(key.public, {**headers, sg.INPUT_HEADER: later}, "POST", "/federation/v1/hello",
                "a=1", b"{}")  # fmt: skip


def test_malformed_signature_input_is_named() -> None:
    for text, words in [
        ('fed=("@method");created=1;nonce="abcdefghijklmnop";keyid="k";alg="ed25519"', "cover"),
        ('fed=("@method" "@path" "@query" "content-digest" "fabnet-hub");nonce="abcdefghijklmnop";'
         'keyid="k";alg="ed25519"', "created"),
        ('fed=("@method" "@path" "@query" "content-digest" "fabnet-hub");created=1;nonce="x";'
         'keyid="k";alg="ed25519"', "nonce"),
        ('fed=("@method" "@path" "@query" "content-digest" "fabnet-hub");created=1;'
         'nonce="abcdefghijklmnop";keyid="k";alg="hmac-sha256"', "alg"),
        ("sig1=anything", "not of the form"),
    ]:  # fmt: skip
        with pytest.raises(sg.SignatureRefused, match=words):
            sg.parse_params(text, sg.REQUEST_COMPONENTS)
    with pytest.raises(sg.SignatureRefused, match="Signature-Input is missing"):
        sg.header({}, sg.INPUT_HEADER)


def test_clock_skew_is_refused_both_ways() -> None:
    sg.check_clock(NOW, NOW + 299, 300)
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(sg.SignatureRefused, match="from this hub's clock"):
            sg.check_clock(NOW, now, 300)


def test_answer_must_be_the_peers_and_for_this_request() -> None:
    beta = HubKey.generate()
    body = b'{"hub": "beta"}'
    headers = sg.lower_headers(sg.sign_response(beta, "beta", 200, body, NOW, NONCE).items())
    sg.verify_response(beta.public, "beta", 200, headers, body, NONCE, NOW, 300)
    with pytest.raises(sg.SignatureRefused, match="another request"):
        sg.verify_response(beta.public, "beta", 200, headers, body, "z" * 24, NOW, 300)
    with pytest.raises(sg.SignatureRefused, match="is not beta's key"):
        sg.verify_response(HubKey.generate().public, "beta", 200, headers, body, NONCE, NOW, 300)
    with pytest.raises(sg.SignatureRefused, match="expected 'gamma'"):
        sg.verify_response(beta.public, "gamma", 200, headers, body, NONCE, NOW, 300)
    with pytest.raises(sg.SignatureRefused, match="bad signature"):
        sg.verify_response(beta.public, "beta", 201, headers, body, NONCE, NOW, 300)
