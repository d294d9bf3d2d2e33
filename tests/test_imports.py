"""The shape of the code: no import circle anywhere in `oncall/`, each layer importing only
those below it, and one clock.

The import graph is read statically (ast over every module, function-level and
TYPE_CHECKING imports included), so a circle fails here with its modules named, before it can
fail an import at run time."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "oncall"

Graph = Mapping[str, set[str]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[str]:
    """The oncall modules `name` imports: `from X import Y` names module X.Y when there is one,
    else X itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}"
                elif base in known:
                    yield base


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: set(_imported(name, path, known)) - {name} for name, path in known.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """Every circle of `graph`, one per strongly connected part, as a path that closes on its
    first module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(_path_through(sorted(part), graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_through(part: list[str], graph: Graph) -> list[str]:
    """A circle inside one strongly connected part: from its first module back to it."""
    members, start = set(part), part[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = start if start in nxt else None
        if back is not None and len(path) > 1:
            return [*path, start]
        step = next((w for w in nxt if w not in seen), None)
        if step is None:  # a dead end inside the part: close on the first module it reaches
            return [*path, nxt[0]]
        path.append(step)
        seen.add(step)


class TestTheCircleFinder:
    def test_it_names_a_circle_of_three_and_ignores_a_chain(self) -> None:
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
        assert cycles(graph) == [["a", "b", "c", "a"]]
        assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []

    def test_a_function_level_import_counts(self, tmp_path: Path) -> None:
        src = "def f() -> None:\n    from oncall.b import x\n"
        (tmp_path / "a.py").write_text(src)
        known = {"oncall.a": tmp_path / "a.py", "oncall.b": tmp_path / "b.py"}
        assert list(_imported("oncall.a", tmp_path / "a.py", known)) == ["oncall.b"]


def test_no_import_circle_in_oncall() -> None:
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


# What may import what: a layer never reaches above itself.
FORBIDDEN = [
    (
        "oncall.i18n",
        ("oncall.core", "oncall.store", "oncall.service", "oncall.web", "oncall.channels", "oncall.config"),
    ),
    ("oncall.core", ("oncall.store", "oncall.service", "oncall.web", "oncall.channels", "oncall.config")),
    ("oncall.store", ("oncall.service", "oncall.web", "oncall.scheduler", "oncall.channels")),
    ("oncall.channels", ("oncall.service", "oncall.web", "oncall.store", "oncall.scheduler")),
    ("oncall.service", ("oncall.web", "oncall.scheduler", "oncall.commands")),
    ("oncall.scheduler", ("oncall.web", "oncall.commands")),
    ("oncall.reassure", ("oncall.service", "oncall.web")),
    ("oncall.acklinks", ("oncall.service", "oncall.web")),
]


@pytest.mark.parametrize(("layer", "above"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_a_layer_imports_nothing_above_it(layer: str, above: tuple[str, ...]) -> None:
    graph = import_graph()
    wrong = sorted(
        f"{m} -> {dep}"
        for m, deps in graph.items()
        if m == layer or m.startswith(layer + ".")
        for dep in deps
        if any(dep == a or dep.startswith(a + ".") for a in above)
    )
    assert not wrong, f"{layer} imports from above it: " + ", ".join(wrong)


def _clock_reads(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("now", "utcnow", "today")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("datetime", "date")
        ):
            yield f"{path.relative_to(ROOT)}:{node.lineno}"


def test_only_the_root_clock_reads_the_system_time() -> None:
    reads = [r for name, path in _modules().items() if name != "oncall.clock" for r in _clock_reads(path)]
    assert reads == [], "reads the system time instead of being given a clock: " + ", ".join(reads)
