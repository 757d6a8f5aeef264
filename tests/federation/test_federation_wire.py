"""The wire messages between hubs (``fabnet.federation.wire``): every message survives its JSON
round trip (through real JSON text), and every malformed field is refused with InvalidInput
naming that field."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fabnet.core.states import MachineKind
from fabnet.errors import InvalidInput
from fabnet.federation import wire
from fabnet.federation.wire import (
    DesignPackage,
    ReportOutcome,
    ReportResult,
    ReportState,
    TaskReport,
    TaskTransfer,
    TransferAnswer,
)

MESH = b"solid cube\nendsolid cube\n"


def package(**changes: Any) -> DesignPackage:
    fields: dict[str, Any] = {
        "slug": "cube", "name": "Cube", "author": "Ada", "license": "CC-BY-4.0",
        "version": "1.0", "filename": "cube.stl", "mesh": MESH,
        "sha256": hashlib.sha256(MESH).hexdigest(), "description": "a cube",
        "source_url": "https://example.org/cube", "remix_of": None,
    }  # fmt: skip
    return DesignPackage(**{**fields, **changes})


def transfer() -> TaskTransfer:
    return TaskTransfer("t" * 32, 3, "j" * 32, MachineKind.CNC, "MDF", "normal",
                        datetime(2026, 5, 1, 12, tzinfo=UTC), 900.0, package(), 2)  # fmt: skip


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(data)))


def test_a_transfer_survives_its_round_trip() -> None:
    sent = transfer()
    assert wire.transfer_from_json(through_json(wire.transfer_json(sent))) == sent
    undated = TaskTransfer(sent.origin_task_id, 1, sent.origin_job_id, MachineKind.FDM, "PLA",
                           "fine", None, 60.0, package(source_url=None, remix_of="ab" * 32))  # fmt: skip
    assert wire.transfer_from_json(through_json(wire.transfer_json(undated))) == undated


def test_answers_reports_and_results_survive_their_round_trips() -> None:
    for answer in (TransferAnswer(True, "x" * 32), TransferAnswer(False, None, "no CNC here")):
        assert wire.answer_from_json(through_json(wire.answer_json(answer))) == answer
    reports = [
        TaskReport("r1", "t" * 32, 2, ReportState.PROGRESS, fraction=0.25),
        TaskReport("r2", "t" * 32, 2, ReportState.STARTED),
        TaskReport(
            "r3", "u" * 32, 1, ReportState.DONE, 1.0, 12.5, 0.75, 4200, peer_task_id="p" * 32
        ),
        TaskReport("r4", "v" * 32, 1, ReportState.FAILED, reason="spindle stalled"),
        TaskReport("r5", "w" * 32, 4, ReportState.RELEASED, reason="cancelled at beta"),
    ]
    assert wire.reports_from_json(through_json(wire.reports_json(reports))) == reports
    results = [ReportResult("r1", ReportOutcome.APPLIED),
               ReportResult("r2", ReportOutcome.STALE, "final: task is done")]  # fmt: skip
    assert wire.results_from_json(through_json(wire.results_json(results))) == results
    assert [s.is_final for s in ReportState] == [False, False, True, True, True]


def test_peer_machine_and_requester_names() -> None:
    assert wire.peer_machine_id("beta") == "peer:beta"
    assert wire.peer_of_machine("peer:beta") == "beta"
    assert wire.peer_of_machine("ada/m1") is None and wire.peer_of_machine(None) is None
    assert wire.peer_of_requester(wire.peer_requester("alpha")) == "alpha"
    assert wire.peer_of_requester("bob") is None


def broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(wire.transfer_json(transfer()))
    where = data
    for key in path[:-1]:
        where = where[key]
    if value is DELETE:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("origin_task_id",), "", "origin_task_id must be a non-empty string"),
        (("origin_task_id",), DELETE, "origin_task_id must be a non-empty string"),
        (("offer_no",), "3", "offer_no must be an integer"),
        (("offer_no",), True, "offer_no must be an integer"),
        (("offer_no",), 0, "offer_no must be >= 1"),
        (("origin_job_id",), 7, "origin_job_id must be a non-empty string"),
        (("kind",), "laser", "kind must be one of fdm, cnc"),
        (("material",), "", "material must be a non-empty string"),
        (("quality",), None, "quality must be a non-empty string"),
        (("deadline",), "tomorrow", "deadline must be an ISO 8601 time"),
        (("deadline",), "2026-05-01T12:00:00", "deadline must carry a UTC offset"),
        (("lease_s",), 0, "lease_s must be > 0"),
        (("rejected_parts",), -1, "rejected_parts must be >= 0"),
        (("rejected_parts",), "1", "rejected_parts must be an integer"),
        (("lease_s",), "900", "lease_s must be a number"),
        (("lease_s",), float("nan"), "lease_s must be finite"),
        (("design",), "cube", "design must be an object"),
        (("design", "slug"), "", "design.slug must be a non-empty string"),
        (("design", "name"), "x" * 401, "design.name is longer than 400 characters"),
        (("design", "author"), DELETE, "design.author must be a non-empty string"),
        (("design", "license"), 1, "design.license must be a non-empty string"),
        (("design", "version"), "", "design.version must be a non-empty string"),
        (("design", "filename"), "", "design.filename must be a non-empty string"),
        (("design", "sha256"), "00" * 32, "design.sha256 0000000000000000… is not the mesh's"),
        (("design", "mesh_b64"), "not base64!", "design.mesh_b64 is not base64"),
        (("design", "description"), 5, "design.description must be a non-empty string"),
        (("design", "source_url"), 5, "design.source_url must be a non-empty string"),
        (("design", "remix_of"), "", "design.remix_of must be a non-empty string"),
    ],
)  # fmt: skip
def test_a_malformed_transfer_names_its_field(path: tuple[str, ...], value: Any,
                                              message: str) -> None:  # fmt: skip
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        wire.transfer_from_json(broken(path, value))


def test_a_mesh_over_the_limit_is_refused() -> None:
    big = b"\0" * (wire.MAX_MESH_BYTES + 1)
    with pytest.raises(InvalidInput, match="design.mesh is .* bytes, over"):
        package(mesh=big, sha256=hashlib.sha256(big).hexdigest())


def test_a_malformed_answer_names_its_field() -> None:
    with pytest.raises(InvalidInput, match="accepted must be true or false"):
        wire.answer_from_json({"accepted": "yes"})
    with pytest.raises(InvalidInput, match="an accepted transfer must name the peer's task_id"):
        wire.answer_from_json({"accepted": True})
    with pytest.raises(InvalidInput, match="why must be a non-empty string"):
        wire.answer_from_json({"accepted": False, "why": 3})


def report(**changes: Any) -> dict[str, Any]:
    item = wire.reports_json([TaskReport("r1", "t" * 32, 2, ReportState.DONE, 1.0, 5.0, 0.5,
                                         10)])["reports"][0]  # fmt: skip
    for key, value in changes.items():
        if value is DELETE:
            del item[key]
        else:
            item[key] = value
    return {"reports": [item]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"report_id": ""}, r"reports\[0\].report_id must be a non-empty string"),
        ({"origin_task_id": DELETE}, r"reports\[0\].origin_task_id must be a non-empty string"),
        ({"offer_no": 1.5}, r"reports\[0\].offer_no must be an integer"),
        ({"state": "burnt"}, r"reports\[0\].state must be one of progress, started, done"),
        ({"fraction": 1.5}, "fraction must be 0..1"),
        ({"fraction": "half"}, r"reports\[0\].fraction must be a number"),
        ({"grams": -1}, "grams must be >= 0"),
        ({"grams": float("inf")}, r"reports\[0\].grams must be finite"),
        ({"machine_hours": float("nan")}, r"reports\[0\].machine_hours must be finite"),
        ({"machine_hours": -0.5}, "machine_hours must be >= 0"),
        ({"charged_mc": 1.5}, r"reports\[0\].charged_mc must be an integer"),
        ({"charged_mc": -3}, "charged_mc must be >= 0"),
        ({"reason": ["x"]}, r"reports\[0\].reason must be a non-empty string"),
        ({"peer_task_id": 7}, r"reports\[0\].peer_task_id must be a non-empty string"),
    ],
)  # fmt: skip
def test_a_malformed_report_names_its_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        wire.reports_from_json(report(**changes))


def test_a_malformed_batch_is_refused() -> None:
    with pytest.raises(InvalidInput, match="reports must be a list"):
        wire.reports_from_json({"reports": {}})
    with pytest.raises(InvalidInput, match=r"reports\[0\] must be an object"):
        wire.reports_from_json({"reports": ["r1"]})
    many = report()["reports"] * (wire.MAX_REPORTS + 1)
    with pytest.raises(InvalidInput, match=f"at most {wire.MAX_REPORTS} reports per request"):
        wire.reports_from_json({"reports": many})
    with pytest.raises(InvalidInput, match="results must be a list"):
        wire.results_from_json({})
    with pytest.raises(InvalidInput, match=r"results\[0\].outcome is not a known outcome"):
        wire.results_from_json({"results": [{"report_id": "r1", "outcome": "lost"}]})
    with pytest.raises(InvalidInput, match=r"results\[1\] must be an object"):
        wire.results_from_json({"results": [{"report_id": "r1", "outcome": "applied"}, 3]})
