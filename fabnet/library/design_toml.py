"""Read, validate and write ``designs/<slug>/design.toml``: typed keys, unknown keys refused."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from fabnet.errors import ConfigError, LicenseError
from fabnet.library.licenses import parse_license
from fabnet.library.mesh_io import MESH_SUFFIXES

DESIGN_FILE = "design.toml"
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # always fullmatch: "$" would let "a\n" in
REQUIRED = ("name", "author", "license", "version", "mesh")
OPTIONAL = ("description", "tags", "remix_of", "source_url")
MAX_TEXT = 4000


@dataclass(frozen=True)
class DesignRecord:
    """The validated content of one ``design.toml``."""

    name: str
    author: str
    license: str
    version: str
    mesh: str
    description: str = ""
    tags: tuple[str, ...] = ()
    remix_of: str | None = None
    source_url: str | None = None


def check_slug(slug: str) -> str:
    """``slug`` when it is lower-case-hyphenated (``faceshield-frame``); ConfigError if not."""
    if not SLUG.fullmatch(slug) or len(slug) > 80:
        raise ConfigError(f"slug {slug!r} must be lower-case letters and digits joined by '-'")
    return slug


def read_record(path: Path) -> DesignRecord:
    """Parse and validate ``path``; ConfigError names the file and the key."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} (known: {', '.join(REQUIRED + OPTIONAL)})"
        )
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{path}: missing key {missing[0]!r}")
    text = {key: _text(data, key, path) for key in REQUIRED + OPTIONAL if key != "tags"}
    record = DesignRecord(
        name=text["name"] or "",
        author=text["author"] or "",
        license=text["license"] or "",
        version=text["version"] or "",
        mesh=text["mesh"] or "",
        description=text["description"] or "",
        tags=_tags(data, path),
        remix_of=text["remix_of"],
        source_url=text["source_url"],
    )
    return validate_record(record, path)


def validate_record(record: DesignRecord, path: Path) -> DesignRecord:
    """Check values (non-empty, license, slug, url, mesh name); ConfigError naming the key."""
    for key in REQUIRED:
        if not getattr(record, key).strip():
            raise ConfigError(f"{path}: key {key!r} must not be empty")
    try:
        parse_license(record.license)
    except LicenseError as exc:
        raise ConfigError(f"{path}: key 'license': {exc}") from exc
    if record.remix_of is not None:
        try:
            check_slug(record.remix_of)
        except ConfigError as exc:
            raise ConfigError(f"{path}: key 'remix_of': {exc}") from exc
    if record.source_url is not None and not re.match(r"^https?://\S+$", record.source_url):
        raise ConfigError(
            f"{path}: key 'source_url' must be an http(s) URL, got {record.source_url!r}"
        )
    mesh = record.mesh
    if Path(mesh).name != mesh or mesh.startswith("."):
        raise ConfigError(f"{path}: key 'mesh' must be a file name in the folder, got {mesh!r}")
    if Path(mesh).suffix.lower() not in MESH_SUFFIXES:
        raise ConfigError(
            f"{path}: key 'mesh' must end in one of {', '.join(MESH_SUFFIXES)}, got {mesh!r}"
        )
    for tag in record.tags:
        check_tag(tag, path)
    return record


def check_tag(tag: str, path: Path) -> None:
    if not SLUG.fullmatch(tag):
        raise ConfigError(f"{path}: tag {tag!r} must be lower-case words joined by '-'")


def _text(data: dict[str, object], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(
            f"{path}: key {key!r} must be a string, got {type(value).__name__} {value!r}"
        )
    if len(value) > MAX_TEXT:
        raise ConfigError(f"{path}: key {key!r} is longer than {MAX_TEXT} characters")
    return value


def _tags(data: dict[str, object], path: Path) -> tuple[str, ...]:
    value = data.get("tags", [])
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ConfigError(f"{path}: key 'tags' must be a list of strings, got {value!r}")
    return tuple(value)


def render_record(record: DesignRecord) -> str:
    """TOML text for ``record`` (JSON string escapes are valid TOML basic strings)."""
    lines = [
        f"name = {json.dumps(record.name, ensure_ascii=False)}",
        f"author = {json.dumps(record.author, ensure_ascii=False)}",
        f"license = {json.dumps(record.license)}",
        f"version = {json.dumps(record.version, ensure_ascii=False)}",
        f"description = {json.dumps(record.description, ensure_ascii=False)}",
        f"tags = [{', '.join(json.dumps(tag) for tag in record.tags)}]",
    ]
    if record.remix_of is not None:
        lines.append(f"remix_of = {json.dumps(record.remix_of)}")
    if record.source_url is not None:
        lines.append(f"source_url = {json.dumps(record.source_url, ensure_ascii=False)}")
    lines.append(f"mesh = {json.dumps(record.mesh, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
