"""Refuse placeholder and short secrets in a config at start.

The operator's ``[http] api_token`` and the broker passwords guard the whole network; the
templates ship placeholders (``change-me``, ``<set by registration>``) that must never reach
a running hub or agent, and a short secret is guessable. ``fabnet init hub`` writes strong ones.
"""

from __future__ import annotations

from fabnet.errors import ConfigError
from fabnet.profiles.reader import TableReader

MIN_SECRET_CHARS = 16
PLACEHOLDER_PREFIX = "change-me"


def is_placeholder(value: str) -> bool:
    """True for a template's stand-in: ``change-me…`` or ``<…>``."""
    text = value.strip()
    return text.lower().startswith(PLACEHOLDER_PREFIX) or (
        text.startswith("<") and text.endswith(">")
    )


def secret(table: TableReader, key: str, placeholder_hint: str) -> str:
    """The secret ``key`` of ``table``, refused if it is a placeholder or shorter than
    MIN_SECRET_CHARS. ``placeholder_hint`` says how to get a real one. Raises ConfigError
    naming the key (and where it was set) but never the secret itself."""
    value = table.text(key)
    if is_placeholder(value):
        raise ConfigError(f"{table.source(key)} is a placeholder; {placeholder_hint}")
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{table.source(key)} is too short ({len(value)} characters); use at least "
            f"{MIN_SECRET_CHARS}, e.g. from: python -c 'import secrets; "
            f"print(secrets.token_urlsafe(24))'"
        )
    return value
