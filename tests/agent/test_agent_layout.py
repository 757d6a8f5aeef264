"""The agent's modules form no import loop: ``MachineSetup`` lives in ``agent.setup``, so
``overrides`` (which rebuilds a setup) no longer reaches back into ``runner`` (issue 9)."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "fabnet" / "agent"


def agent_imports(module: str) -> set[str]:
    """The ``fabnet.agent`` modules ``module`` imports, under TYPE_CHECKING too."""
    tree = ast.parse((AGENT / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fabnet.agent."):
            found.add((node.module or "").removeprefix("fabnet.agent."))
        elif isinstance(node, ast.ImportFrom) and node.module == "fabnet.agent":
            found.update(alias.name for alias in node.names)
    return found


def test_no_agent_module_imports_one_that_imports_it_back() -> None:
    modules = sorted(p.stem for p in AGENT.glob("*.py") if p.stem != "__init__")
    edges = {m: agent_imports(m) for m in modules}
    assert {"overrides", "prepare", "outbox"} <= edges["runner"], "the walk sees imports"
    assert "setup" in edges["overrides"] and "setup" in edges["runner"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, set()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    loops = [m for m in modules if reaches(m, m, {m})]
    assert loops == []
