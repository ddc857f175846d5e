"""The package import graph of ns2: pure packages stay pure, no circles, and no layer imports a higher one.

The graph is read with ``ast`` from every ``import`` in ns2/ (top-level and inside functions alike, since
a deferred import is still a dependency). ``python tests/test_layering.py`` prints it with its figures:
packages, levels (longest import chain), imports that run upward in :data:`LAYERS`, and circles.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ns2"

#: The layer order, lowest first (documented in README.md, "The layers"). A package may import packages
#: of lower layers only; packages of one layer do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("utils",),                        # I/O, provenance, schemas: no ns2 imports
    ("text", "audio", "modules"),      # text front end; signal helpers (frame grid, F0); shared layers
    ("codec", "models", "metrics"),    # pure nn.Modules (codec, systems) and the metrics with their backbones
    ("losses",),                       # the training objectives of the models and the codec
    ("data",),                         # corpora, manifests, preparation stages, codes, aligner, datamodules
    ("inference",),                    # samplers, checkpoints read back, synthesizers
    ("lit",),                          # LightningModules (training; validation synthesis through inference)
    ("eval", "app"),                   # the evaluation harness, studies and benchmarks; the web app (ns2/app/)
    ("cli",),                          # the `ns2` command
)

#: Pure packages and what they must never import (the design card's rule).
PURE = ("modules", "models", "codec")
FORBIDDEN_FOR_PURE = ("data", "lit", "eval", "cli")


def packages(root: Path = ROOT) -> list[str]:
    """The sub-packages of ns2 (folders with an ``__init__.py``)."""
    return sorted(p.parent.name for p in root.glob("*/__init__.py"))


@lru_cache(maxsize=None)
def _parsed(root: Path) -> tuple[tuple[Path, tuple[ast.AST, ...]], ...]:
    """Every ``.py`` file under ``root`` with its import nodes (parsed once per tree)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out.append((path, tuple(n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))))
    return tuple(out)


def _imported(node: ast.AST, module: list[str], is_package: bool) -> list[str]:
    """Absolute dotted names imported by one ``import`` / ``from ... import`` node of ``module``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module if is_package else module[:-1]
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        # ``from ns2 import data`` imports the package ``ns2.data``
        return [f"{name}.{a.name}" for a in node.names] if name == "ns2" else [name]
    return []


def import_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """``{(importing package, imported package): [files]}`` over every import between two ns2 packages."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, nodes in _parsed(root):
        rel = path.relative_to(root.parent)
        if len(rel.parts) < 3:  # ns2/__init__.py and other top-level files belong to no package
            continue
        module = list(rel.with_suffix("").parts)
        is_package = module[-1] == "__init__"
        if is_package:
            module = module[:-1]
        src = rel.parts[1]
        for node in nodes:
            for name in _imported(node, module, is_package):
                parts = name.split(".")
                if parts[0] == "ns2" and len(parts) > 1 and parts[1] != src:
                    if str(rel) not in edges[(src, parts[1])]:
                        edges[(src, parts[1])].append(str(rel))
    return dict(edges)


def module_edges(root: Path = ROOT) -> set[tuple[str, str]]:
    """``{(module, module)}``: every import of one ns2 module by another, named to the module imported.

    ``from ns2.x import y`` names module ``ns2.x.y`` when that is a module, else ``ns2.x``. The implicit
    import of a parent package's ``__init__`` is not an edge (it is what any submodule import does)."""
    files = {}
    for path, nodes in _parsed(root):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_package else parts)] = (nodes, parts[:-1] if is_package else parts, is_package)
    edges = set()
    for name, (nodes, module, is_package) in files.items():
        for node in nodes:
            targets = _imported(node, module, is_package)
            if isinstance(node, ast.ImportFrom):
                targets = [f"{t}.{a.name}" if f"{t}.{a.name}" in files else t for t in targets for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != name and t.count(".") and not name.startswith(t + "."):
                    edges.add((name, t))
    return edges


def circles(nodes: list[str], edges) -> list[list[str]]:
    """Strongly connected groups of more than one package (Tarjan): every import circle lies in one."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def levels(nodes: list[str], edges) -> dict[str, int]:
    """Level of each package: 0 when it imports no other package, else 1 + the highest level it imports.

    Packages on a circle share the circle's level (the circle is collapsed into one node first)."""
    groups = {v: frozenset([v]) for v in nodes}
    for group in circles(nodes, edges):
        for v in group:
            groups[v] = frozenset(group)
    deps = defaultdict(set)
    for a, b in edges:
        if groups[a] != groups[b]:
            deps[groups[a]].add(groups[b])
    memo: dict[frozenset, int] = {}

    def level(g: frozenset) -> int:
        if g not in memo:
            memo[g] = 1 + max((level(d) for d in deps[g]), default=-1)
        return memo[g]

    return {v: level(groups[v]) for v in nodes}


def layer_of() -> dict[str, int]:
    return {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def upward(edges) -> list[tuple[str, str, list[str]]]:
    """Imports of a package of the same or a higher layer: ``[(importer, imported, files)]``."""
    rank = layer_of()
    return [(a, b, files) for (a, b), files in sorted(edges.items()) if a in rank and b in rank and rank[b] >= rank[a]]


def report(root: Path = ROOT) -> dict:
    nodes = [p for p in packages(root)]
    edges = import_edges(root)
    lv = levels(nodes, edges)
    return {
        "packages": len(nodes),
        "levels": 1 + max(lv.values(), default=-1),
        "edges": len(edges),
        "upward": upward(edges),
        "circles": circles(nodes, edges),
        "module_circles": circles(sorted({m for e in module_edges(root) for m in e}), module_edges(root)),
        "level_of": lv,
        "graph": {a: sorted(b for (x, b) in edges if x == a) for a in nodes},
    }


# ----------------------------------------------------------------------------------------------- tests
def test_every_package_has_a_layer():
    placed = layer_of()
    assert len(placed) == sum(map(len, LAYERS)), "a package is listed in two layers"
    missing = [p for p in packages() if p not in placed]
    assert not missing, f"ns2 packages {missing} are not placed in LAYERS (tests/test_layering.py); add them"
    gone = [p for p in placed if not (ROOT / p / "__init__.py").is_file()]
    assert not gone, f"LAYERS names {gone}, which are not packages of ns2"


@pytest.mark.parametrize("pure", PURE)
def test_pure_packages_import_no_training_or_evaluation_code(pure):
    edges = import_edges()
    bad = {b: files for (a, b), files in edges.items() if a == pure and b in FORBIDDEN_FOR_PURE}
    assert not bad, f"ns2.{pure} imports {sorted(bad)}: " + "; ".join(f"{b} in {', '.join(f)}" for b, f in sorted(bad.items()))


def test_no_circle_between_packages():
    found = circles(packages(), import_edges())
    assert not found, f"import circles between packages: {found}"


def test_no_circle_between_modules():
    edges = module_edges()
    found = circles(sorted({m for e in edges for m in e}), edges)
    assert not found, f"import circles between modules: {found}"


def test_no_layer_imports_upward():
    bad = upward(import_edges())
    assert not bad, "imports against the layer order: " + "; ".join(f"{a} -> {b} ({', '.join(f)})" for a, b, f in bad)


def test_the_graph_reader_sees_deferred_relative_and_upward_imports(tmp_path):
    """The checks above can fail: a made-up tree with a deferred upward import and a circle is caught."""
    pkg = tmp_path / "ns2"
    for name, body in {
        "utils": "",
        "codec": "def f():\n    from ns2.lit import x\n",
        "lit": "from ..codec import y\nimport ns2.utils.io\n",
    }.items():
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text(body)
    (pkg / "codec" / "sub.py").write_text("from .. import utils\n")
    edges = import_edges(pkg)
    assert set(edges) == {("codec", "lit"), ("lit", "codec"), ("lit", "utils"), ("codec", "utils")}
    assert circles(packages(pkg), edges) == [["codec", "lit"]]
    assert ("codec", "lit", ["ns2/codec/__init__.py"]) in upward(edges)
    assert levels(packages(pkg), edges) == {"codec": 1, "lit": 1, "utils": 0}


if __name__ == "__main__":
    r = report(Path(sys.argv[1]) / "ns2" if len(sys.argv) > 1 else ROOT)
    print(f"{r['packages']} packages on {r['levels']} levels, {r['edges']} package imports, "
          f"{len(r['upward'])} against the layer order, {len(r['circles'])} circle(s) {r['circles']}; "
          f"{len(r['module_circles'])} circle(s) between modules {r['module_circles']}")
    for pkg, deps in sorted(r["graph"].items(), key=lambda kv: (r["level_of"][kv[0]], kv[0])):
        print(f"  level {r['level_of'][pkg]}  {pkg:<10} -> {', '.join(deps) or '-'}")
    for a, b, files in r["upward"]:
        print(f"  upward: {a} -> {b}  ({', '.join(files)})")
