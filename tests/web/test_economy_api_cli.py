"""``fabnet quote`` against a hub app served over real HTTP."""

from __future__ import annotations

import threading
from pathlib import Path

from api_support import CUBE, api_hub
from click.testing import CliRunner
from werkzeug.serving import make_server

from fabnet.hub.economy.cli import credits_text, quote_command


def test_quote_prints_prices_and_machines(tmp_path: Path) -> None:
    with api_hub(tmp_path) as hub:
        server = make_server("127.0.0.1", 0, hub.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}"
            args = [CUBE, "--quantity", "3", "--material", "pla", "--hub", url]
            result = CliRunner().invoke(quote_command, [*args, "--token", hub.tokens["rita"]])
            assert result.exit_code == 0, result.output
            assert f"3 x {CUBE} in PLA: lowest " in result.output
            assert "ada/mk3s-1" in result.output and "bruno/ender3-1" in result.output
            bad = CliRunner().invoke(quote_command, [CUBE, "--quantity", "0", "--material",
                                                     "pla", "--hub", url, "--token", hub.tokens["rita"]])  # fmt: skip
            assert bad.exit_code != 0 and "quantity must be" in str(bad.exception)
        finally:
            server.shutdown()


def test_credits_text_is_exact() -> None:
    assert credits_text(1234567) == "1234.567"
    assert credits_text(-5) == "-0.005"
    assert credits_text(None) == "-"
