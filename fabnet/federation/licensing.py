"""What may be sent to a peer hub, by the design's license (pure; issue 12).

Sending a design to another hub hands a copy of it to another party: redistribution. Only
open licenses (the SPDX ids fabnet knows, all of which allow copies to be shared) permit it.
A design with no license (``NOASSERTION``), a ``LicenseRef-`` (all rights reserved, or terms
fabnet cannot read) or an unparseable expression is never sent. A non-commercial (``-NC``)
design goes only to a peer that charges no credits for making it: a peer paid for the part
would be using the design commercially. With ``A OR B`` the most permissive choice counts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fabnet.errors import LicenseError
from fabnet.library.licenses import KNOWN_LICENSES, NOASSERTION, is_non_commercial, parse_license


class Redistribution(enum.Enum):
    ANY = "any"  # may be sent to any peer
    NON_COMMERCIAL = "non-commercial"  # only to a peer charging no credits for it
    NONE = "none"  # never leaves this hub


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    reason: str


def redistribution(expression: str) -> Redistribution:
    """How a design under ``expression`` (SPDX) may be redistributed."""
    try:
        parsed = parse_license(expression, allow_noassertion=True)
    except LicenseError:
        return Redistribution.NONE
    best = Redistribution.NONE
    for alternative in parsed.alternatives:
        if NOASSERTION in alternative or not alternative <= KNOWN_LICENSES:
            continue  # no license, or terms fabnet cannot read: all rights reserved
        if not any(is_non_commercial(i) for i in alternative):
            return Redistribution.ANY
        best = Redistribution.NON_COMMERCIAL
    return best


def may_send(expression: str, peer_charges_credits: bool) -> SendDecision:
    """Whether a design under ``expression`` may be sent to a peer, and why (for the log)."""
    rule = redistribution(expression)
    if rule is Redistribution.ANY:
        return SendDecision(True, f"{expression} allows redistribution")
    if rule is Redistribution.NON_COMMERCIAL:
        if peer_charges_credits:
            return SendDecision(False, f"{expression} is non-commercial and the peer charges "
                                       "credits for the work")  # fmt: skip
        return SendDecision(True, f"{expression} is non-commercial; the peer charges nothing")
    return SendDecision(False, f"{expression!r} does not allow redistribution")
