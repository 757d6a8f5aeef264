"""Lineage through ``remix_of`` and the attribution chain each remix owes its ancestors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fabnet.errors import ConfigError, NotFound
from fabnet.library.design import Design, load_design
from fabnet.library.licenses import NOASSERTION, parse_license

MAX_DEPTH = 100


@dataclass(frozen=True)
class Credit:
    """One design in an attribution chain."""

    slug: str
    name: str
    version: str
    author: str
    license: str
    source_url: str | None
    non_commercial: bool

    def line(self) -> str:
        """``<name> v<version> by <author>, <license>, <source_url>``."""
        url = self.source_url or "no source URL"
        return f"{self.name} v{self.version} by {self.author}, {self.license}, {url}"


def _credit(design: Design) -> Credit:
    nc = design.license != NOASSERTION and parse_license(design.license).non_commercial
    return Credit(
        slug=design.slug,
        name=design.name,
        version=design.version,
        author=design.author,
        license=design.license,
        source_url=design.source_url,
        non_commercial=nc,
    )


def lineage(design: Design, directory: Path | None = None) -> list[Design]:
    """``design`` followed by its parent, grandparent… ; ConfigError on a cycle,
    NotFound when an ancestor is missing from the library."""
    chain = [design]
    seen = {design.slug}
    current = design
    while current.remix_of is not None:
        parent_slug = current.remix_of
        if parent_slug in seen or len(chain) > MAX_DEPTH:
            path = " -> ".join([d.slug for d in chain] + [parent_slug])
            raise ConfigError(f"remix_of forms a cycle: {path}")
        try:
            current = load_design(parent_slug, directory)
        except NotFound as exc:
            raise NotFound(
                f"design {current.slug} is a remix of {parent_slug!r}, which is not in the library"
            ) from exc
        chain.append(current)
        seen.add(parent_slug)
    return chain


def credits(design: Design, directory: Path | None = None) -> list[Credit]:
    """The attribution chain: the design itself first, then every ancestor in order."""
    return [_credit(d) for d in lineage(design, directory)]


def non_commercial_in(chain: list[Credit]) -> list[Credit]:
    """The credits in ``chain`` whose license forbids commercial use."""
    return [c for c in chain if c.non_commercial]
