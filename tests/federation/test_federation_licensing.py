"""The license rule for sending designs to peer hubs, over the license table: open licenses go
anywhere, -NC ones only to peers charging no credits, the rest (no license, all rights
reserved, unknown, unparseable) never."""

from __future__ import annotations

import pytest

from fabnet.federation.licensing import Redistribution, may_send, redistribution
from fabnet.library.licenses import KNOWN_LICENSES

CLOSED = ("NOASSERTION", "LicenseRef-All-Rights-Reserved", "LicenseRef-Proprietary", "",
          "Not-A-License", "(MIT)", "CC-BY-4.0 WITH Foo")  # fmt: skip


@pytest.mark.parametrize("spdx", sorted(KNOWN_LICENSES))
def test_every_known_license_is_sent_by_its_nc_clause(spdx: str) -> None:
    nc = "-NC" in spdx
    assert redistribution(spdx) is (Redistribution.NON_COMMERCIAL if nc else Redistribution.ANY)
    assert may_send(spdx, peer_charges_credits=False).allowed
    assert may_send(spdx, peer_charges_credits=True).allowed is not nc


@pytest.mark.parametrize("spdx", CLOSED)
def test_closed_designs_are_never_sent(spdx: str) -> None:
    assert redistribution(spdx) is Redistribution.NONE
    for charges in (True, False):
        decision = may_send(spdx, peer_charges_credits=charges)
        assert not decision.allowed and "does not allow redistribution" in decision.reason


@pytest.mark.parametrize(
    ("spdx", "expected"),
    [
        ("CC-BY-NC-4.0 OR MIT", Redistribution.ANY),  # the permissive choice counts
        ("LicenseRef-All-Rights-Reserved OR CC-BY-NC-SA-4.0", Redistribution.NON_COMMERCIAL),
        ("CC-BY-4.0 AND LicenseRef-Logo", Redistribution.NONE),  # a closed part closes it
        ("CC-BY-4.0 AND CC-BY-NC-4.0", Redistribution.NON_COMMERCIAL),
        ("NOASSERTION OR LicenseRef-Mine", Redistribution.NONE),
    ],
)
def test_expressions(spdx: str, expected: Redistribution) -> None:
    assert redistribution(spdx) is expected


def test_nc_is_refused_to_a_charging_peer_with_the_reason() -> None:
    decision = may_send("CC-BY-NC-SA-4.0", peer_charges_credits=True)
    assert not decision.allowed and "non-commercial" in decision.reason
