"""The layering of k8snet, as docs/lab-architecture.md ("Layers") declares it.

The two tables there are the rule; this test reads them and every ``import`` in
``k8snet`` (also those under ``TYPE_CHECKING`` and inside functions: each is a
dependency a reader has to follow), and fails on an upward import, a helper module
reaching into the lab past the declared entries, a lab module the table does not place,
and an import cycle, naming the file and line.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "k8snet"
DOC = ROOT / "docs" / "lab-architecture.md"
LAB = "k8snet.lab"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported k8snet module (a package's __init__ when no submodule is named)
    where: str  # path:line


def module_files() -> dict[str, Path]:
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


def imports_of(name: str, path: Path, modules: set[str]) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import x" names the submodule pkg.x when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                found.append(Import(name, target, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def all_imports() -> list[Import]:
    files = module_files()
    return [imp for name, path in files.items() for imp in imports_of(name, path, set(files))]


def declared_tables() -> tuple[list[tuple[str, ...]], set[str]]:
    """(the layers bottom first, each a tuple of module prefixes; the helper's entries)."""
    section = DOC.read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    tables: list[list[list[str]]] = [[]]
    for line in section.splitlines():
        if not line.startswith("|"):
            if tables[-1]:
                tables.append([])
            continue
        if not re.fullmatch(r"\|(-+\|)+", line):
            tables[-1].append([cell.strip() for cell in line.strip("|").split("|")])
    layer_rows, entry_rows = [rows[1:] for rows in tables if rows][:2]  # [0] is each header
    layers = [tuple(re.findall(r"`([\w.]+)`", row[1])) for row in layer_rows]
    entries = {name for row in entry_rows for name in re.findall(r"`([\w.]+)`", row[0])}
    return layers, entries


def layer_of(module: str, layers: list[tuple[str, ...]]) -> int | None:
    """The layer whose longest listed prefix matches ``module``."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, prefixes in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def is_lab(module: str) -> bool:
    return module == LAB or module.startswith(LAB + ".")


def upward_imports(imports: list[Import], layers: list[tuple[str, ...]]) -> list[str]:
    found = []
    for imp in imports:
        if not (is_lab(imp.source) and is_lab(imp.target)) or LAB in (imp.source, imp.target):
            continue
        low, high = layer_of(imp.source, layers), layer_of(imp.target, layers)
        if low is not None and high is not None and high > low:
            found.append(f"{imp.where}: {imp.source} (layer {low}) imports {imp.target} (layer {high})")
    return found


def helper_violations(imports: list[Import], entries: set[str]) -> list[str]:
    found = []
    for imp in imports:
        if is_lab(imp.source) and not is_lab(imp.target):
            found.append(f"{imp.where}: the lab's {imp.source} imports the helper side's {imp.target}")
        elif not is_lab(imp.source) and is_lab(imp.target) and imp.target not in entries:
            found.append(f"{imp.where}: {imp.source} imports {imp.target}, not a declared entry of the lab")
    return found


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_the_tables_are_read():
    layers, entries = declared_tables()
    assert len(layers) >= 8 and all(layers) and "k8snet.lab.errors" in layers[0]
    assert "k8snet.lab.lifecycle" in entries and "k8snet.lab.config" in entries


def test_every_lab_module_has_a_layer():
    layers, _ = declared_tables()
    unplaced = [m for m in module_files() if is_lab(m) and m != LAB and layer_of(m, layers) is None]
    assert not unplaced, "place these in docs/lab-architecture.md's layer table: " + ", ".join(unplaced)


def test_no_lab_module_imports_upward(imports):
    layers, _ = declared_tables()
    assert not (found := upward_imports(imports, layers)), "\n".join(found)


def test_the_helper_side_uses_only_the_declared_entries(imports):
    _, entries = declared_tables()
    assert not (found := helper_violations(imports, entries)), "\n".join(found)


def test_no_import_cycle(imports):
    assert not (found := cycles(imports)), "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checks_find_what_they_look_for():
    """Each check on a made-up graph with the fault it must report."""
    layers = [("k8snet.lab.errors",), ("k8snet.lab.store",), ("k8snet.lab.kubelet",)]
    up = Import("k8snet.lab.store", "k8snet.lab.kubelet.podworker", "k8snet/lab/store.py:3")
    down = Import("k8snet.lab.kubelet.kubelet", "k8snet.lab.store", "k8snet/lab/kubelet/kubelet.py:9")
    assert upward_imports([up, down], layers) == [
        "k8snet/lab/store.py:3: k8snet.lab.store (layer 1) imports k8snet.lab.kubelet.podworker (layer 2)"]
    past = Import("k8snet.cluster", "k8snet.lab.store", "k8snet/cluster.py:40")
    back = Import("k8snet.lab.store", "k8snet.results", "k8snet/lab/store.py:4")
    assert len(helper_violations([past, back, down], {"k8snet.lab.errors"})) == 2
    loop = [Import("a", "b", "a.py:1"), Import("b", "c", "b.py:1"), Import("c", "a", "c.py:1"), Import("c", "d", "")]
    assert cycles(loop) == [["a", "b", "c"]]
