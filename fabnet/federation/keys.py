"""This hub's Ed25519 key pair: the private key in a file only its owner reads (made on first
use), the public key shared as text (base64 of its 32 raw bytes) and its key id.

Ed25519 because it has one safe parameter set, small keys that fit on a command line, and
deterministic signatures; RFC 9421 registers it as ``ed25519``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fabnet.errors import ConfigError, InvalidInput

RAW_KEY_BYTES = 32
KEY_ID_HEX = 16  # the first 64 bits of the public key's sha256: enough to name, not to trust
KEY_FILE_MODE = 0o600


@dataclass(frozen=True)
class PublicKey:
    """A peer's (or this hub's) public key: ``text`` is base64 of the raw 32 bytes."""

    text: str

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.text)

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:KEY_ID_HEX]


def parse_public_key(text: str) -> PublicKey:
    """A public key given as base64 of its 32 raw bytes or as a PEM ``PUBLIC KEY`` block;
    InvalidInput naming the problem otherwise."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise InvalidInput(f"key: not a PEM public key: {exc}") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise InvalidInput(f"key: must be an Ed25519 public key, got {type(loaded).__name__}")
        raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(base64.b64encode(raw).decode())
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"key must be base64 (or PEM), got {text!r:.80}") from None
    if len(raw) != RAW_KEY_BYTES:
        raise InvalidInput(
            f"key must be an Ed25519 public key of {RAW_KEY_BYTES} bytes, got {len(raw)}"
        )
    return PublicKey(base64.b64encode(raw).decode())


class HubKey:
    """This hub's private key; ``public`` is what its peers are given."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = PublicKey(base64.b64encode(raw).decode())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    @classmethod
    def generate(cls) -> HubKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> HubKey:
        """The key in ``path`` (PEM, PKCS#8); made there, readable by its owner only, when the
        file does not exist. ConfigError if the file is not an Ed25519 private key or is
        readable by others (a leaked key lets anyone speak as this hub)."""
        if not path.exists():
            return cls._create(path)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(
                f"{path}: the hub's federation key must be readable by its owner only "
                f"(chmod 600), mode is {mode:o}"
            )
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ConfigError(f"{path}: not a PEM private key: {exc}") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigError(f"{path}: must be an Ed25519 private key")
        return cls(loaded)

    @classmethod
    def _create(cls, path: Path) -> HubKey:
        key = cls.generate()
        pem = key._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(tmp, path)  # another hub process made it first: theirs stands
        except FileExistsError:
            os.unlink(tmp)
            return cls.load_or_create(path)
        os.unlink(tmp)
        return key
