"""The layout rules of docs/architecture.md, checked on the source: kernels import no IO or orchestration, IO no
orchestration, no import cycle between heattrack modules (counting function-local imports too), every module
readable in one sitting."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "heattrack"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (not imported at run time)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            out |= {id(n) for b in node.body for n in ast.walk(b)}
    return out


def _imports(f: Path, known: set[str]) -> set[str]:
    deps = set()
    tree = ast.parse(f.read_text())
    skip = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n.startswith("heattrack"):
                deps.add(n)
    return deps


GRAPH = {m: _imports(f, set(_modules())) - {m} for m, f in _modules().items()}


def _layer(m: str) -> str:
    return m.split(".")[1] if m.count(".") >= 1 else "top"


@pytest.mark.parametrize("layer, forbidden", [("kernels", {"io", "orchestration", "report", "cli"}),
                                              ("io", {"orchestration", "report", "cli"})])
def test_lower_layers_do_not_import_upper_ones(layer, forbidden):
    bad = [(m, d) for m, deps in GRAPH.items() if _layer(m) == layer for d in deps if _layer(d) in forbidden]
    assert bad == []


def test_no_import_cycles():
    # packages import their own submodules (``__init__`` re-exports): an edge from a package to its child is
    # not a cycle of the code
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in GRAPH.items()}
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert cycles == []


def test_modules_are_small_enough_to_read():
    long = {m: n for m, f in _modules().items() if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_source_reader_implements_the_protocol():
    from heattrack.io.gee import GeeSceneReader
    from heattrack.io.local import LocalSceneReader
    from heattrack.io.sources import SceneReader
    from heattrack.io.stac import StacSceneReader
    from heattrack.io.thermal import ThermalReader

    for cls in (LocalSceneReader, StacSceneReader, GeeSceneReader, ThermalReader):
        assert issubclass(cls, SceneReader), cls
