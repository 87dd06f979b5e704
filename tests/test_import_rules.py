"""The architecture's rules, held: imports point down, no cycles (type-only imports count), a public surface.

Every module under ``src/edgechat_tui`` is parsed (not imported) and every import in it, at module
level, inside functions and under ``TYPE_CHECKING`` alike, becomes an edge. Then:

- each package imports only the layers below it (the table below);
- no two modules reach each other through imports, directly or in a ring;
- every package declares ``__all__``;
- no module grows past the size where it stops having one job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "edgechat_tui"

#: What each top-level package may import of ours. ``core`` imports nothing of ours.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "storage": {"core"},
    "config": {"core", "storage"},
    "http": {"core", "config"},
    "backends": {"core", "storage", "config", "http"},
    "ui": {"core", "storage", "config", "backends"},
    "serve": {"core", "storage", "config", "backends", "ui"},
    "cli": {"core", "storage", "config", "backends", "ui", "http", "serve"},
    "": {"core", "storage", "config", "backends", "ui", "http", "cli", "serve"},  # __init__, __main__
}
MAX_LINES = 500  # config/settings.py sits near 480: to split next


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, level: int, name: str | None, current: str, is_package: bool) -> str:
    if level:
        base = current.split(".") if is_package else current.split(".")[:-1]
        base = base[: len(base) - (level - 1)]
        module = ".".join([*base, module] if module else base)
    return module


def imports_of(name: str) -> set[str]:
    """Every module of ours that ``name`` imports, anywhere in its text."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(ROOT):
                    found.add(_longest_known(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, None, name, is_package)
            if not base.startswith(ROOT):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else _longest_known(base))
    found.discard(name)
    return found


def _longest_known(dotted: str) -> str:
    parts = dotted.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts)


GRAPH = {name: imports_of(name) for name in MODULES}


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else ""


def test_imports_point_down() -> None:
    wrong = []
    for name, targets in GRAPH.items():
        layer = _layer(name)
        for target in targets:
            if target == ROOT and not GRAPH[ROOT]:
                continue  # the package root holds only __version__, for everyone
            other = _layer(target)
            if other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{name} imports {target} ({layer or 'top'} may not use {other or 'top'})")
    assert not wrong, "\n".join(sorted(wrong))


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def _package_ring(component: list[str]) -> bool:
    """A package's ``__init__`` re-exporting its own modules is not a cycle of design: skip that pair."""
    packages = [m for m in component if MODULES[m].name == "__init__.py"]
    if not packages:
        return False
    rest = [m for m in component if m not in packages]
    return all(any(m.startswith(p + ".") for p in packages) for m in rest) and all(
        not any(p in GRAPH[m] for m in rest) for p in packages)


def test_no_import_cycles_anywhere() -> None:
    rings = [c for c in _cycles() if not _package_ring(c)]
    assert not rings, "\n".join(" <-> ".join(c) for c in rings)


@pytest.mark.parametrize("package", sorted(n for n, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_declares_its_public_surface(package: str) -> None:
    tree = ast.parse(MODULES[package].read_text())
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "__all__" in names, f"{package} has no __all__"


def test_no_module_outgrows_one_job() -> None:
    big = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not big, big


def test_the_rules_see_what_they_should() -> None:
    """The checker itself: a known edge and a known package are found (a blind parser passes all)."""
    assert "edgechat_tui.core.messages" in GRAPH["edgechat_tui.backends.base"]
    assert any(_layer(n) == "ui" for n in GRAPH) and any(_layer(n) == "core" for n in GRAPH)


REMOTE_MAX_LINES = 400  # the remote agent's modules stay small: each has one part of the protocol


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(f"{ROOT}.backends.remote")))
def test_remote_agent_modules_stay_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= REMOTE_MAX_LINES, f"{name} has {lines} lines: split it"
