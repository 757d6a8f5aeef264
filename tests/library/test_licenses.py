"""SPDX parsing and the remix rules: ND refused, SA kept, copyleft kept, NC carried."""

from __future__ import annotations

import pytest

from fabnet.errors import LicenseError
from fabnet.library.licenses import check_remix, parse_license


def test_parse_ids_and_expressions() -> None:
    assert parse_license("CC0-1.0").ids == {"CC0-1.0"}
    both = parse_license("MIT AND CC-BY-4.0")
    assert both.alternatives == (frozenset({"MIT", "CC-BY-4.0"}),)
    either = parse_license("GPL-3.0-or-later OR MIT")
    assert len(either.alternatives) == 2
    assert parse_license("LicenseRef-MyShop-1.0").ids == {"LicenseRef-MyShop-1.0"}


def test_unknown_id_is_named_with_a_hint() -> None:
    with pytest.raises(LicenseError, match=r"unknown SPDX id 'cc-by-4.0'; did you mean CC-BY-4.0"):
        parse_license("cc-by-4.0")
    with pytest.raises(LicenseError, match="unknown SPDX id 'GPL'"):
        parse_license("MIT AND GPL")
    with pytest.raises(LicenseError, match="only for ad-hoc files"):
        parse_license("NOASSERTION")


def test_nd_design_cannot_be_remixed() -> None:
    with pytest.raises(LicenseError, match="CC-BY-ND-4.0 allows no derivatives"):
        check_remix("boat", "CC-BY-ND-4.0", "CC-BY-4.0")
    with pytest.raises(LicenseError, match="no derivatives"):
        check_remix("boat", "CC-BY-NC-ND-4.0", "CC-BY-NC-ND-4.0")


def test_sa_remix_keeps_the_license() -> None:
    assert check_remix("hook", "CC-BY-SA-4.0", "CC-BY-SA-4.0") == []
    with pytest.raises(LicenseError) as info:
        check_remix("hook", "CC-BY-SA-4.0", "CC-BY-4.0")
    assert "must keep CC-BY-SA-4.0, not CC-BY-4.0" in str(info.value)


def test_copyleft_remix_keeps_a_compatible_copyleft() -> None:
    assert check_remix("idler", "AGPL-3.0-only", "AGPL-3.0-only") == []
    assert check_remix("conveyor", "GPL-2.0-or-later", "GPL-3.0-or-later") == []
    with pytest.raises(LicenseError, match="AGPL-3.0-only is copyleft"):
        check_remix("idler", "AGPL-3.0-only", "MIT")
    with pytest.raises(LicenseError, match="GPL-2.0-only is copyleft"):
        check_remix("old", "GPL-2.0-only", "GPL-3.0-or-later")


def test_permissive_parent_allows_any_license() -> None:
    assert check_remix("cube", "MIT", "CC-BY-NC-SA-4.0") == []
    assert check_remix("boat", "CC0-1.0", "Apache-2.0") == []


def test_nc_is_carried_and_reported() -> None:
    notices = check_remix("vase", "CC-BY-NC-4.0", "CC-BY-NC-4.0")
    assert notices == ["non-commercial: vase is CC-BY-NC-4.0; the remix inherits that"]
    assert parse_license("CC-BY-NC-SA-4.0").non_commercial
    assert not parse_license("CC-BY-NC-4.0 OR MIT").non_commercial


def test_or_parent_allows_a_remix_through_one_alternative() -> None:
    assert check_remix("dual", "CC-BY-ND-4.0 OR MIT", "MIT") == []
    with pytest.raises(LicenseError) as info:
        check_remix("dual", "CC-BY-ND-4.0 OR CC-BY-SA-4.0", "MIT")
    assert "no derivatives" in str(info.value) and "must keep CC-BY-SA-4.0" in str(info.value)
