"""``fabnet submit`` against a hub app served over real HTTP: with a requester's own token the
job is the token's user's (no ``--requester`` needed); only an operator names someone else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import CUBE, ApiHub, api_hub, serving
from click.testing import CliRunner, Result

from fabnet.hub.cli import submit_command


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiHub, str]]:
    with api_hub(tmp_path) as hub:
        with serving(hub.app) as url:
            yield hub, url


def submit(url: str, token: str, *extra: str) -> Result:
    args = [CUBE, "--quantity", "2", "--material", "pla", "--hub", url, "--token", token]
    return CliRunner().invoke(submit_command, [*args, *extra])


def test_a_requesters_own_token_submits_for_them(served: tuple[ApiHub, str]) -> None:
    hub, url = served
    result = submit(url, hub.tokens["rita"])
    assert result.exit_code == 0, result.output
    job_id = result.output.split()[1].rstrip(":")
    job = hub.client("rita").get(f"/api/v1/jobs/{job_id}").get_json()
    assert job["requester"] == "rita" and job["material"] == "PLA", job


def test_only_an_operator_names_another_requester(served: tuple[ApiHub, str]) -> None:
    hub, url = served
    refused = submit(url, hub.tokens["rita"], "--requester", "ravi")
    assert refused.exit_code != 0
    assert "403: only operators submit for someone else" in str(refused.exception)
    ok = submit(url, hub.tokens["olga"], "--requester", "ravi")
    assert ok.exit_code == 0, ok.output
    job_id = ok.output.split()[1].rstrip(":")
    assert hub.client("ravi").get(f"/api/v1/jobs/{job_id}").get_json()["requester"] == "ravi"
