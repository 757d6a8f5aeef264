"""Dependencies point inward: walk every import of ``fabnet/**/*.py`` with ``ast``."""

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
