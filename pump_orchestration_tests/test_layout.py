"""The package's import graph: no cycles (imports inside functions count), and a Dagster-free core."""
from __future__ import annotations

import ast
from pathlib import Path

import pump_orchestration

PACKAGE_DIR = Path(pump_orchestration.__file__).parent
CORE = ("pump_orchestration.ml", "pump_orchestration.warehouse", "pump_orchestration.data",
        "pump_orchestration.live", "pump_orchestration.delivery", "pump_orchestration.vocabulary",
        "pump_orchestration.settings")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports, anywhere in its body (project modules resolved to their own name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            # "from pkg import submodule" imports the submodule too.
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {m for m in _imports(name, path, known) if m in known and m != name}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_walker_sees_imports_inside_functions_and_finds_a_cycle():
    graph = _graph()
    # definitions.py imports the capabilities at module level; assets import the core inside functions.
    assert "pump_orchestration.defs.training.definitions" in graph["pump_orchestration.definitions"]
    assert "pump_orchestration.ml.pipeline" in graph["pump_orchestration.defs.training.assets"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_core_imports_no_dagster_and_no_dagster_layer():
    offenders = {}
    for name, path in _modules().items():
        if not name.startswith(CORE):
            continue
        bad = {m for m in _imports(name, path, set()) if m.split(".")[0] == "dagster" or m.startswith("dagster_")
               or m.startswith(("pump_orchestration.defs", "pump_orchestration.definitions"))}
        if bad:
            offenders[name] = sorted(bad)
    assert offenders == {}


def test_shared_imports_no_capability_and_tags_are_a_leaf():
    graph = _graph()
    shared = {n: deps for n, deps in graph.items() if n.startswith("pump_orchestration.defs.shared")}
    assert shared, "defs.shared not found"
    for name, deps in shared.items():
        domain = {d for d in deps if d.startswith("pump_orchestration.defs.") and
                  not d.startswith("pump_orchestration.defs.shared")}
        assert not domain, f"{name} imports capability module(s) {sorted(domain)}"
    assert graph["pump_orchestration.defs.shared.tags"] <= {"pump_orchestration.vocabulary"}
