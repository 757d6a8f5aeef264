"""SPDX license ids and expressions, and the rules a remix must follow (ND, SA, copyleft, NC)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabnet.errors import LicenseError

NOASSERTION = "NOASSERTION"

# Common SPDX ids for open hardware, 3D models and the code that ships them.
KNOWN_LICENSES = frozenset(
    {
        "CC0-1.0",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-3.0",
        "CC-BY-NC-4.0",
        "CC-BY-NC-SA-3.0",
        "CC-BY-NC-SA-4.0",
        "CC-BY-ND-3.0",
        "CC-BY-ND-4.0",
        "CC-BY-NC-ND-3.0",
        "CC-BY-NC-ND-4.0",
        "CC-PDDC",
        "MIT",
        "0BSD",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "Apache-2.0",
        "ISC",
        "Unlicense",
        "MPL-2.0",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "CERN-OHL-P-2.0",
        "CERN-OHL-W-2.0",
        "CERN-OHL-S-2.0",
        "CERN-OHL-1.2",
        "TAPR-OHL-1.0",
        "SHL-0.51",
        "SHL-2.1",
    }
)

# A remix of a design under the key may only carry one of these (reciprocal licenses).
# Conservative: "or later" may narrow to the version it names or later, never widen.
COPYLEFT_KEEPS: dict[str, frozenset[str]] = {
    "GPL-2.0-only": frozenset({"GPL-2.0-only"}),
    "GPL-2.0-or-later": frozenset({"GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later"}),
    "GPL-3.0-only": frozenset({"GPL-3.0-only"}),
    "GPL-3.0-or-later": frozenset({"GPL-3.0-or-later", "GPL-3.0-only"}),
    "AGPL-3.0-only": frozenset({"AGPL-3.0-only"}),
    "AGPL-3.0-or-later": frozenset({"AGPL-3.0-or-later", "AGPL-3.0-only"}),
    "LGPL-2.1-only": frozenset({"LGPL-2.1-only"}),
    "LGPL-2.1-or-later": frozenset({"LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later"}),
    "LGPL-3.0-only": frozenset({"LGPL-3.0-only"}),
    "LGPL-3.0-or-later": frozenset({"LGPL-3.0-or-later", "LGPL-3.0-only"}),
    "MPL-2.0": frozenset({"MPL-2.0"}),
    "CERN-OHL-S-2.0": frozenset({"CERN-OHL-S-2.0"}),
    "CERN-OHL-W-2.0": frozenset({"CERN-OHL-W-2.0"}),
    "CERN-OHL-1.2": frozenset({"CERN-OHL-1.2"}),
    "TAPR-OHL-1.0": frozenset({"TAPR-OHL-1.0"}),
}

_LICENSE_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.\-]+$")


@dataclass(frozen=True)
class License:
    """A parsed SPDX expression: OR-alternatives, each a set of ids that all apply."""

    expression: str
    alternatives: tuple[frozenset[str], ...]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset().union(*self.alternatives)

    @property
    def non_commercial(self) -> bool:
        """True when every alternative forbids commercial use."""
        return all(any(is_non_commercial(i) for i in alt) for alt in self.alternatives)

    @property
    def no_derivatives(self) -> bool:
        """True when every alternative forbids derivatives (remixes)."""
        return all(any(is_no_derivatives(i) for i in alt) for alt in self.alternatives)


def is_non_commercial(spdx_id: str) -> bool:
    return spdx_id.startswith("CC-BY-NC")


def is_no_derivatives(spdx_id: str) -> bool:
    return spdx_id.startswith("CC-BY") and "-ND-" in spdx_id


def is_share_alike(spdx_id: str) -> bool:
    return spdx_id.startswith("CC-BY") and "-SA-" in spdx_id


def parse_license(expression: str, allow_noassertion: bool = False) -> License:
    """Parse ``A``, ``A AND B`` or ``A OR B`` (AND binds tighter); LicenseError on unknown ids.

    Parentheses and ``WITH`` exceptions are not supported and are refused by name.
    """
    text = expression.strip()
    if not text:
        raise LicenseError("license is empty; give an SPDX id such as CC-BY-4.0")
    if text == NOASSERTION:
        if not allow_noassertion:
            raise LicenseError("license NOASSERTION is only for ad-hoc files, not library designs")
        return License(text, (frozenset({NOASSERTION}),))
    if any(token in text for token in ("(", ")", " WITH ")):
        raise LicenseError(f"license {text!r}: parentheses and WITH are not supported")
    alternatives: list[frozenset[str]] = []
    for alternative in re.split(r"\s+OR\s+", text):
        ids = re.split(r"\s+AND\s+", alternative)
        for spdx_id in ids:
            _check_id(spdx_id, text)
        alternatives.append(frozenset(ids))
    return License(text, tuple(alternatives))


def _check_id(spdx_id: str, expression: str) -> None:
    if spdx_id in KNOWN_LICENSES or _LICENSE_REF.match(spdx_id):
        return
    near = [k for k in sorted(KNOWN_LICENSES) if k.lower() == spdx_id.lower()]
    hint = f"; did you mean {near[0]}?" if near else ""
    raise LicenseError(
        f"license {expression!r}: unknown SPDX id {spdx_id!r}{hint} "
        f"(known: {', '.join(sorted(KNOWN_LICENSES))}, or LicenseRef-...)"
    )


def check_remix(parent_slug: str, parent_license: str, child_license: str) -> list[str]:
    """Refuse (LicenseError) a remix the parent's license forbids; return notices to show.

    Rules: an ``-ND`` parent cannot be remixed; an ``-SA`` parent's remix keeps the same
    license; a copyleft parent's (GPL, AGPL, CERN-OHL-S…) remix keeps a compatible copyleft;
    an ``-NC`` parent's restriction is carried and reported. Each OR-alternative of the parent
    is tried; the remix is allowed when one alternative permits it.
    """
    parent = parse_license(parent_license)
    child = parse_license(child_license)
    reasons: list[str] = []
    for alternative in parent.alternatives:
        reason = _alternative_refusal(alternative, child)
        if reason is None:
            return _notices(parent_slug, parent)
        reasons.append(reason)
    raise LicenseError(f"cannot remix {parent_slug} ({parent.expression}): {'; '.join(reasons)}")


def _alternative_refusal(terms: frozenset[str], child: License) -> str | None:
    """Why the parent terms refuse the child license, or None when they allow it."""
    for term in sorted(terms):
        if is_no_derivatives(term):
            return f"{term} allows no derivatives, so it cannot be remixed"
        if is_share_alike(term) and not all(term in alt for alt in child.alternatives):
            return f"{term} is share-alike: the remix must keep {term}, not {child.expression}"
        keeps = COPYLEFT_KEEPS.get(term)
        if keeps and not all(alt & keeps for alt in child.alternatives):
            return (
                f"{term} is copyleft: the remix must keep a compatible license "
                f"({', '.join(sorted(keeps))}), not {child.expression}"
            )
    return None


def _notices(parent_slug: str, parent: License) -> list[str]:
    if parent.non_commercial:
        return [f"non-commercial: {parent_slug} is {parent.expression}; the remix inherits that"]
    return []
