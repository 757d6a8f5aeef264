"""One declaration per request/response shape: validates JSON bodies, query strings and forms
(errors name the field and the value) and emits the JSON Schema the OpenAPI document uses."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fabnet.errors import InvalidInput

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
VALUE_LIMIT = 80  # characters of a bad value quoted back in an error


@dataclass(frozen=True)
class Field:
    """One field: JSON type, whether required, limits, and a nested shape for objects/arrays.

    ``type`` is a JSON Schema type name; ``format="binary"`` marks an uploaded file (forms).
    """

    name: str
    type: str
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    nullable: bool = False
    default: Any = None
    format: str | None = None
    items: Field | Schema | None = None
    schema: Schema | None = None

    def __post_init__(self) -> None:
        if self.type not in JSON_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")

    def check(self, value: Any, where: str) -> Any:
        """``value`` if it fits, else ``InvalidInput`` naming ``where`` and the value."""
        if value is None:
            if self.nullable:
                return None
            raise InvalidInput(f"{where} must not be null")
        if not _is_type(value, self.type):
            raise InvalidInput(f"{where} must be {_a(self.type)}, got {_show(value)}")
        if self.enum is not None and value not in self.enum:
            raise InvalidInput(f"{where} must be one of {', '.join(self.enum)}, got {_show(value)}")
        if self.type in ("integer", "number"):
            lo, hi = self.minimum, self.maximum
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise InvalidInput(f"{where} must be {_range(lo, hi)}, got {value}")
        if self.max_length is not None and isinstance(value, str | list):
            if len(value) > self.max_length:
                raise InvalidInput(
                    f"{where} must have at most {self.max_length} items/characters, "
                    f"got {len(value)}"
                )
        if self.min_length is not None and isinstance(value, str | list):
            if len(value.strip() if isinstance(value, str) else value) < self.min_length:
                raise InvalidInput(f"{where} must not be empty, got {_show(value)}")
        if self.schema is not None:
            return self.schema.validate(value, where + ".")
        if self.items is not None:
            return [_check_item(self.items, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": [self.type, "null"] if self.nullable else self.type}
        if self.schema is not None:
            out = self.schema.json_schema()
            if self.nullable:
                out = {"anyOf": [out, {"type": "null"}]}
        if self.description:
            out["description"] = self.description
        for key, value in (
            ("enum", list(self.enum) if self.enum else None),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("format", self.format),
            ("default", self.default),
        ):
            if value is not None:
                out[key] = value
        if self.max_length is not None:
            out["maxItems" if self.type == "array" else "maxLength"] = self.max_length
        if self.min_length is not None:
            out["minItems" if self.type == "array" else "minLength"] = self.min_length
        if self.items is not None:
            out["items"] = self.items.json_schema()
        return out


@dataclass(frozen=True)
class Schema:
    """An object shape: named fields; unknown keys are refused unless ``open``."""

    name: str
    fields: tuple[Field, ...]
    description: str = ""
    open: bool = False
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def validate(self, body: Any, prefix: str = "") -> dict[str, Any]:
        """The checked body with defaults filled in; raises ``InvalidInput`` naming the field."""
        if not isinstance(body, dict):
            what = prefix.rstrip(".") or "request body"
            raise InvalidInput(f"{what} must be a JSON object, got {_show(body)}")
        unknown = sorted(set(body) - set(self.by_name))
        if unknown and not self.open:
            names = ", ".join(prefix + u for u in unknown)
            raise InvalidInput(f"unknown field(s): {names} (allowed: {', '.join(self.by_name)})")
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name not in body:
                if f.required:
                    raise InvalidInput(f"{prefix}{f.name} is required")
                out[f.name] = copy.deepcopy(f.default)
                continue
            out[f.name] = f.check(body[f.name], prefix + f.name)
        return out

    def validate_strings(self, values: Mapping[str, str], what: str = "query") -> dict[str, Any]:
        """Check a query string or form: each value is parsed to its field's type first."""
        body: dict[str, Any] = {}
        for key in values:
            f = self.by_name.get(key)
            if f is None:
                if self.open:
                    continue
                raise InvalidInput(
                    f"unknown {what} parameter {key!r} (allowed: {', '.join(self.by_name)})"
                )
            body[key] = _parse(f, values[key])
        return self.validate(body)

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "additionalProperties": self.open,
        }
        if self.required:
            out["required"] = self.required
        if self.description:
            out["description"] = self.description
        return out

    def parameters(self) -> list[dict[str, Any]]:
        """OpenAPI query parameters for a query-string schema."""
        return [
            {
                "name": f.name,
                "in": "query",
                "required": f.required,
                "schema": f.json_schema(),
                **({"description": f.description} if f.description else {}),
            }
            for f in self.fields
        ]


@dataclass(frozen=True)
class ListOf:
    """A JSON array of ``item`` objects (a response shape)."""

    item: Schema

    @property
    def name(self) -> str:
        return f"{self.item.name}List"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"$ref": f"#/components/schemas/{self.item.name}"}}

    def validate(self, body: Any, prefix: str = "") -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise InvalidInput(f"{prefix or 'body'} must be an array, got {_show(body)}")
        return [self.item.validate(v, f"{prefix}[{i}].") for i, v in enumerate(body)]


def _check_item(items: Field | Schema, value: Any, where: str) -> Any:
    if isinstance(items, Schema):
        return items.validate(value, where + ".")
    return items.check(value, where)


def _parse(f: Field, text: str) -> Any:
    if f.type == "integer":
        try:
            return int(text)
        except ValueError:
            raise InvalidInput(f"{f.name} must be an integer, got {_show(text)}") from None
    if f.type == "number":
        try:
            return float(text)
        except ValueError:
            raise InvalidInput(f"{f.name} must be a number, got {_show(text)}") from None
    if f.type == "boolean":
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise InvalidInput(f"{f.name} must be true or false, got {_show(text)}")
    if f.type == "array":
        return [part for part in text.split(",") if part]
    return text


def _is_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, JSON_TYPES[kind])


def _a(kind: str) -> str:
    return {"integer": "an integer", "object": "an object", "array": "an array"}.get(
        kind, f"a {kind}"
    )


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g}..{hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 3] + "..."
