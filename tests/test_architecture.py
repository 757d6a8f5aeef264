"""Dependencies point inward: walk every import of ``fabnet/**/*.py`` with ``ast``.

The package order (issue 9), inner to outer; a module imports only its own rank or lower:

    0  core, errors (and ``fabnet/__init__``: the version)
    1  store, library, gcode, profiles, slicing, bus, drivers, sim, config, ... (adapters)
    2  hub, agent, web (web calls the hub's services; hub and agent never import each other
       or web)
    3  roots (composition roots) and the command lines (``cli.py``, ``*_cli.py``, ``__main__``)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fabnet"

# The pure core may use the stdlib and the exception tree (a leaf with no fabnet imports).
CORE_MAY_IMPORT_OURS = ("fabnet.core", "fabnet.errors")
CORE_FORBIDDEN = (
    "sqlalchemy",
    "flask",
    "paho",
    "serial",
    "socket",
    "threading",
    "time",
    "trimesh",
    "subprocess",
    "asyncio",
    "requests",
)
INNER = ("core", "store", "library", "gcode", "profiles", "slicing")
OUTER = ("fabnet.web", "fabnet.hub", "fabnet.agent")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute(package: str, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if not level:
        return module or ""
    base = package.split(".")
    base = base[: len(base) - level + 1]
    return ".".join(base + ([module] if module else []))


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = absolute(package, node.level, node.module)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def sources(sub: str = "") -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py")) if (PACKAGE / sub).is_dir() else []


def test_the_walk_finds_the_core_and_sees_its_imports() -> None:
    core = sources("core")
    assert len(core) >= 5, "fabnet/core is missing"
    seen = set().union(*(imports_of(p) for p in core))
    assert "fabnet.core.states" in seen and "datetime" in seen


def test_core_imports_only_core_errors_and_the_stdlib() -> None:
    bad = []
    for path in sources("core"):
        for name in imports_of(path):
            ours = is_under(name, "fabnet")
            if ours and not any(is_under(name, p) for p in CORE_MAY_IMPORT_OURS):
                bad.append(f"{path.name}: {name}")
            if any(is_under(name, f) for f in CORE_FORBIDDEN):
                bad.append(f"{path.name}: {name}")
    assert bad == []


def test_errors_module_is_a_leaf() -> None:
    assert [n for n in imports_of(PACKAGE / "errors.py") if is_under(n, "fabnet")] == []


def test_inner_packages_never_import_the_outer_ones() -> None:
    bad = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for sub in INNER
        for path in sources(sub)
        for name in imports_of(path)
        if any(is_under(name, o) for o in OUTER)
    ]
    assert bad == []


def test_the_walk_catches_forbidden_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import time\nfrom ..web import app\nfrom . import states\n")
    found = imports_of(probe, package="fabnet.core")
    assert {"time", "fabnet.web", "fabnet.web.app", "fabnet.core.states"} <= found
    assert absolute("fabnet.core", 0, "sqlalchemy.orm") == "sqlalchemy.orm"


# -- the whole package order (issue 9) ---------------------------------------------------------

RANKS: dict[str, int] = {
    "fabnet": 0,  # the package itself: __version__ only
    "fabnet.core": 0,
    "fabnet.errors": 0,
    **dict.fromkeys(
        (
            "fabnet.store",
            "fabnet.library",
            "fabnet.gcode",
            "fabnet.profiles",
            "fabnet.slicing",
            "fabnet.bus",
            "fabnet.drivers",
            "fabnet.sim",
            "fabnet.seed",
            "fabnet.config",
            "fabnet.config_env",
            "fabnet.config_tables",
            "fabnet.lifetime",
            "fabnet.secrets_check",
        ),
        1,
    ),
    **dict.fromkeys(("fabnet.hub", "fabnet.agent", "fabnet.web", "fabnet.federation"), 2),
    **dict.fromkeys(("fabnet.roots", "fabnet.cli"), 3),
}
ENTRY_POINT_RANK = 3
# old import paths kept for tests and users: each only re-exports its new home in roots
SHIMS = {"fabnet.hub.process": "fabnet.roots.hub", "fabnet.agent.process": "fabnet.roots.agent"}
# inside rank 2: who must never import whom
APART = (("fabnet.hub", "fabnet.web"), ("fabnet.hub", "fabnet.agent"), ("fabnet.agent", "fabnet.hub"),
         ("fabnet.agent", "fabnet.web"), ("fabnet.web", "fabnet.agent"))  # fmt: skip
# web parses, calls the hub's services and renders: it never builds or sends bus messages
WEB_NEVER = ("fabnet.bus.messages", "fabnet.bus.client", "fabnet.hub.dispatcher",
             "fabnet.hub.dispatch")  # fmt: skip


def is_entry_point(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last == "cli" or last.endswith("_cli") or last == "__main__"


def rank(name: str) -> int | None:
    """The rank of module ``name`` (the longest matching prefix), None if unplaced."""
    if is_entry_point(name):
        return ENTRY_POINT_RANK
    found = [p for p in RANKS if is_under(name, p)]
    return RANKS[max(found, key=len)] if found else None


def order_violations(paths: list[Path], package: str | None = None) -> list[str]:
    bad = []
    for path in paths:
        me = module_name(path) if package is None else f"{package}.{path.stem}"
        mine = rank(me)
        for name in imports_of(path, package):
            if not is_under(name, "fabnet") or (me in SHIMS and is_under(name, SHIMS[me])):
                continue
            theirs = rank(name)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{me} (rank {mine}) imports {name} (rank {theirs})")
            for a, b in APART:
                if is_under(me, a) and is_under(name, b) and not is_entry_point(me):
                    bad.append(f"{me} imports {name}: {a} and {b} stay apart")
    return bad


def test_every_module_has_a_place_in_the_order() -> None:
    unplaced = [module_name(p) for p in sources() if rank(module_name(p)) is None]
    assert unplaced == [], "add the new package to RANKS"


def test_every_import_follows_the_package_order() -> None:
    assert order_violations(sources()) == []


def test_web_never_builds_bus_messages() -> None:
    bad = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sources("web")
        for name in imports_of(path)
        if any(is_under(name, f) for f in WEB_NEVER)
    ]
    assert bad == []


def test_the_shims_only_re_export() -> None:
    for shim, target in SHIMS.items():
        path = PACKAGE.parent / (shim.replace(".", "/") + ".py")
        ours = {n for n in imports_of(path) if is_under(n, "fabnet")}
        assert ours and all(is_under(n, target) for n in ours), shim


def test_the_order_check_catches_an_outward_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from fabnet.roots.hub import Hub\nfrom fabnet.web import create_app\n")
    found = order_violations([probe], package="fabnet.hub")
    assert any("fabnet.roots.hub" in b for b in found)
    assert any("stay apart" in b and "fabnet.web" in b for b in found)
    assert order_violations([probe], package="fabnet.roots") == []


DEFINED_ONCE = ("MachineState", "MachineKind", "TaskState")


def class_definitions(name: str) -> list[str]:
    return [
        module_name(path)
        for path in sources()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name == name
    ]


def test_machine_kinds_and_states_are_defined_once() -> None:
    # fabnet.gcode.machine.MachineState is the G-code interpreter's modal state, another thing
    twice = {
        name: found
        for name in DEFINED_ONCE
        if len(found := [m for m in class_definitions(name) if m != "fabnet.gcode.machine"]) > 1
    }
    assert twice == {}


ORDERINGS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def limit_comparisons(path: Path, field: str) -> list[int]:
    """Lines of ``path`` that order something against an attribute named ``field`` (``<``,
    ``<=``, ``>``, ``>=``: the rule itself; ``is None`` only reads the value)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ORDERINGS) for op in node.ops)
        and any(
            isinstance(side, ast.Attribute) and side.attr == field
            for side in (node.left, *node.comparators)
        )
    ]


def test_the_limit_comparison_probe_sees_a_comparison(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "if hours > policy.max_task_hours:\n    pass\nok = policy.max_task_hours is None\n"
    )
    assert limit_comparisons(probe, "max_task_hours") == [1]


def test_the_policy_hours_rule_is_written_once_in_the_core() -> None:
    outside = {
        str(path.relative_to(PACKAGE)): lines
        for path in sources()
        if not is_under(module_name(path), "fabnet.core")
        and (lines := limit_comparisons(path, "max_task_hours"))
    }
    assert outside == {}
