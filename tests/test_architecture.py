"""The import rules of docs/architecture.md, read from the source (every import, at any depth of a
file, TYPE_CHECKING ones too), and shown to fail when a forbidden import is added."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gatys", "losses")
USES = ("gatys.compare", "gatys.gallery")
ENTRY_POINTS = ("gatys.cli", "gatys.__main__")

# package → the only project packages or modules it may import (besides itself)
LEAVES = {
    "losses": (),
    "gatys.fast": (),
    "gatys.metrics": ("gatys.errors", "gatys.images", "gatys.files"),
}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every module of the project's packages under root."""
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        if node.level:
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # `from x import y` imports the submodule x.y where there is one, else a name of x
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    resolved = []
    for name in names:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known:
            resolved.append(name)
    return resolved


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the project modules it imports, anywhere in its file."""
    known = modules(root)
    graph = {}
    for module, path in known.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported.update(_targets(module, path, node, known))
        graph[module] = imported - {module}
    return graph


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a stated rule, as 'importer -> imported: rule'."""
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            edge = f"{module} -> {target}"
            for leaf, allowed in LEAVES.items():
                if _within(module, leaf) and not _within(target, leaf) and target not in allowed:
                    found.append(f"{edge}: {leaf} may import only itself" +
                                 (f" and {', '.join(allowed)}" if allowed else ""))
            use = next((use for use in USES if _within(module, use)), None)
            core = _within(module, "gatys") and use is None and module not in ENTRY_POINTS and \
                not any(_within(module, leaf) for leaf in LEAVES)
            if core and (any(_within(target, u) for u in USES) or target in ENTRY_POINTS):
                found.append(f"{edge}: the core never imports the uses or the command line")
            if use and (any(_within(target, u) for u in USES if u != use) or target in ENTRY_POINTS):
                found.append(f"{edge}: a use imports the core and itself, not another use or the command line")
    return found + [f"import circle: {' -> '.join(cycle)}" for cycle in cycles(graph)]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan), sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_the_source_keeps_every_import_rule():
    assert violations(import_graph()) == []


def test_the_graph_sees_the_imports_it_should():
    graph = import_graph()
    assert "gatys.fast.cpu_layers" in graph["gatys.vgg"]          # from .fast.cpu_layers import ...
    assert "gatys.fast.winograd" in graph["gatys.fast.cpu_layers"]  # from . import winograd
    assert "gatys.engine" in graph["gatys.gallery.local"]           # an import inside a function
    assert "gatys.gallery.spec" in graph["gatys.gallery"]


@pytest.mark.parametrize("file, line, expected", [
    ("losses/gram.py", "import gatys", "losses may import only itself"),
    ("losses/moments.py", "from gatys.images import resize", "losses may import only itself"),
    ("gatys/fast/winograd.py", "from gatys.engine import Transfer", "gatys.fast may import only itself"),
    ("gatys/fast/heap.py", "from ..config import TransferConfig", "gatys.fast may import only itself"),
    ("gatys/engine.py", "from .gallery import Gallery", "the core never imports the uses"),
    ("gatys/jobs.py", "from . import cli", "the core never imports the uses or the command line"),
    ("gatys/compare/study.py", "from ..gallery.plan import Plan", "not another use"),
    ("gatys/gallery/plan.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .spec import Gallery",
     "import circle"),
    ("gatys/compare/report.py", "def later():\n    from .study import Study", "import circle"),
])
def test_a_forbidden_import_added_to_a_copy_of_the_tree_is_found(tmp_path, file, line, expected):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(import_graph(tmp_path)) == []
    path = tmp_path / file
    path.write_text(path.read_text() + "\n\n" + line + "\n")
    found = violations(import_graph(tmp_path))
    assert any(expected in message for message in found), found
