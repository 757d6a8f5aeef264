"""The credits page and the design page's budget, through the app (bearer tokens): one's own
page, anyone's for operators only (403 otherwise); a budget beyond one's credits is refused on
the design page (409) and a malformed one named (400)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from api_support import CUBE, api_hub


def test_credits_pages_and_budget(tmp_path: Path) -> None:
    with api_hub(tmp_path) as hub:
        hub.store.credits.grant("welcome-ada", "ada", 5_000, datetime.now(UTC))
        ada, rita, olga = hub.client("ada"), hub.client("rita"), hub.client("olga")
        page = ada.get("/credits")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert 'id="earned-total"' in text and 'id="spent-total"' in text  # a prosumer
        assert ">5.000<" in text and 'id="fee-income"' not in text
        assert rita.get("/credits?user=ada").status_code == 403
        mine = rita.get("/credits").get_data(as_text=True)
        assert 'id="earned-total"' not in mine and 'id="spent-total"' in mine
        network = olga.get("/credits?user=ada").get_data(as_text=True)
        assert "Credits of ada" in network and 'id="fee-income"' in network
        assert olga.get("/credits?user=nobody").status_code == 404

        form = {"quantity": "1", "material": "PLA", "quality": "draft", "budget": "6"}
        short = ada.post(f"/designs/{CUBE}/request", data=form)
        assert short.status_code == 409 and "not enough credits" in short.get_data(as_text=True)
        bad = ada.post(f"/designs/{CUBE}/request", data={**form, "budget": "1.0001"})
        assert bad.status_code == 400 and "budget must be" in bad.get_data(as_text=True)
        made = ada.post(f"/designs/{CUBE}/request", data={**form, "budget": "4.5"})
        assert made.status_code == 303
        assert hub.store.credits.balance("user:ada") == 500
