"""A typed, range-checked reader over one TOML table: every key must be read, or it is a typo.

Modelled on Klipper's config getters: each getter names the file, the table and the key in its
error, and ``finish()`` turns any key nobody read into an error. A value that came from an
environment variable (an ``EnvValue``) is text; the getters parse it to the type they need and
name the variable, not the file, when it is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fabnet.errors import ConfigError


class EnvValue(str):
    """A config value given by the environment variable ``variable`` (always text)."""

    variable: str

    def __new__(cls, value: str, variable: str) -> EnvValue:
        self = super().__new__(cls, value)
        self.variable = variable
        return self


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


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

    def source(self, key: str) -> str:
        """Where ``key``'s value came from, for messages: ``file: table.key`` or the variable."""
        value = self._data.get(key)
        if isinstance(value, EnvValue):
            return f"{value.variable} (for {self._name(key)})"
        return f"{self._path}: {self._name(key)}"

    def _bad(self, key: str, value: Any, wanted: str) -> ConfigError:
        """The error for ``key`` holding ``value`` that is not ``wanted``; names its source."""
        shown = str(value) if isinstance(value, EnvValue) else value
        return ConfigError(f"{self.source(key)} {wanted}, got {shown!r}")

    @staticmethod
    def _parsed(value: Any, parse: type[int] | type[float]) -> Any:
        """An environment value parsed by ``parse``; other values (and failures) unchanged."""
        if not isinstance(value, EnvValue):
            return value
        try:
            return parse(value.strip())
        except ValueError:
            return value

    def _raw(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key in self._data:
            return self._data[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self._path}: missing key {self._name(key)}")
        return default

    @property
    def file(self) -> Path:
        """The file this table was read from."""
        return self._path

    def has(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def number(
        self, key: str, lo: float, hi: float, default: Any = None, *, required: bool = True
    ) -> float:
        """A float in [lo, hi]; booleans and strings are refused."""
        raw = self._raw(key, _REQUIRED if required and default is None else default)
        value = self._parsed(raw, float)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, raw, "must be a number")
        if not lo <= value <= hi:
            raise self._bad(key, raw, f"must be {lo:g}..{hi:g}")
        return float(value)

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        raw = self._raw(key, _REQUIRED if default is None else default)
        value = self._parsed(raw, int)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, raw, "must be an integer")
        if not lo <= value <= hi:
            raise self._bad(key, raw, f"must be {lo}..{hi}")
        return value

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self._raw(key, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            raise self._bad(key, value, "must be a string")
        if choices and value not in choices:
            raise self._bad(key, value, f"must be one of {', '.join(choices)}")
        return value  # an EnvValue stays one, for path()

    def path(self, key: str, default: str | None = None) -> Path | None:
        """A file or folder path, absolute; ``""`` is None (not set).

        A relative path in the file is taken against the file's folder, so a config means the
        same wherever the program starts; one from an environment variable is taken against
        the current folder, as a shell user would expect.
        """
        value = self.text(key, default)
        if not value:
            return None
        given = Path(value).expanduser()
        return (given if given.is_absolute() else self.folder_for(value) / given).resolve()

    def folder_for(self, value: str) -> Path:
        """The folder a relative path in ``value`` is taken against (see ``path``)."""
        return Path.cwd() if isinstance(value, EnvValue) else self._path.parent.resolve()

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self._raw(key, _REQUIRED if default is None else default)
        if isinstance(value, EnvValue) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise self._bad(key, value, "must be true or false")
        return value

    def scalar(self, key: str) -> str | int | float | bool:
        """Any single TOML value (for free-form tables such as a driver's options)."""
        value = self._raw(key, _REQUIRED)
        if not isinstance(value, str | int | float | bool):
            raise self._bad(key, value, "must be a scalar")
        return value

    def strings(self, key: str, default: list[str] | None = None) -> tuple[str, ...]:
        value = self._raw(key, _REQUIRED if default is None else default)
        if isinstance(value, EnvValue):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, value, "must be a list of strings")
        return tuple(value)

    def table(self, key: str, *, optional: bool = False) -> TableReader:
        """The sub-table ``key``; with ``optional`` an absent one reads as empty (all defaults)."""
        data = self._raw(key, {} if optional else _REQUIRED)
        return TableReader(data, self._path, self._name(key))

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
            names = ", ".join(self._source(k) for k in unknown)
            raise ConfigError(f"{self._path}: unknown key(s) {names}")

    def _source(self, key: str) -> str:
        value = self._data[key]
        if isinstance(value, EnvValue):
            return f"{self._name(key)} (from {value.variable})"
        return self._name(key)


class _Required:
    pass


_REQUIRED = _Required()
