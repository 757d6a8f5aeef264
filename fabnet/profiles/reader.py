"""A typed, range-checked reader over one TOML table: every key must be read, or it is a typo.

Modelled on Klipper's config getters: each getter names the file, the table and the key in its
error, and ``finish()`` turns any key nobody read into an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fabnet.errors import ConfigError


class TableReader:
    """Reads one TOML table of ``path``; ``where`` is its dotted name for messages."""

    def __init__(self, data: Any, path: Path, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [{where}] must be a table, got {type(data).__name__}")
        self._data: dict[str, Any] = data
        self._path = path
        self._where = where
        self._read: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def _raw(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key in self._data:
            return self._data[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self._path}: missing key {self._name(key)}")
        return default

    def has(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def number(
        self, key: str, lo: float, hi: float, default: Any = None, *, required: bool = True
    ) -> float:
        """A float in [lo, hi]; booleans and strings are refused."""
        value = self._raw(key, _REQUIRED if required and default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._path}: {self._name(key)} must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(
                f"{self._path}: {self._name(key)} must be {lo:g}..{hi:g}, got {value!r}"
            )
        return float(value)

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self._raw(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._path}: {self._name(key)} must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(f"{self._path}: {self._name(key)} must be {lo}..{hi}, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self._raw(key, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            raise ConfigError(f"{self._path}: {self._name(key)} must be a string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(
                f"{self._path}: {self._name(key)} must be one of {', '.join(choices)}, "
                f"got {value!r}"
            )
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self._raw(key, _REQUIRED if default is None else default)
        if not isinstance(value, bool):
            raise ConfigError(
                f"{self._path}: {self._name(key)} must be true or false, got {value!r}"
            )
        return value

    def scalar(self, key: str) -> str | int | float | bool:
        """Any single TOML value (for free-form tables such as a driver's options)."""
        value = self._raw(key, _REQUIRED)
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{self._path}: {self._name(key)} must be a scalar, got {value!r}")
        return value

    def strings(self, key: str, default: list[str] | None = None) -> tuple[str, ...]:
        value = self._raw(key, _REQUIRED if default is None else default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"{self._path}: {self._name(key)} must be a list of strings, got {value!r}"
            )
        return tuple(value)

    def table(self, key: str) -> TableReader:
        return TableReader(self._raw(key, _REQUIRED), self._path, self._name(key))

    def tables(self, key: str) -> list[TableReader]:
        """An array of tables (``[[key]]``)."""
        value = self._raw(key, _REQUIRED)
        if not isinstance(value, list):
            raise ConfigError(f"{self._path}: {self._name(key)} must be an array of tables")
        return [TableReader(v, self._path, f"{self._name(key)}[{i}]") for i, v in enumerate(value)]

    def finish(self) -> None:
        """Raise ConfigError naming every key that was present but never read."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            names = ", ".join(self._name(k) for k in unknown)
            raise ConfigError(f"{self._path}: unknown key(s) {names}")


class _Required:
    pass


_REQUIRED = _Required()
