"""The package layout shows the data flow, and imports run one way: down the stages, never in a circle.

Every import of every module counts (at module level, inside functions, under TYPE_CHECKING): the
modules are read as text with ast, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pfswatchd"

# Layers, lowest first.  A module may import modules of its own layer only inside its own sub-package
# (files and state are side by side and independent) and modules of any lower layer.
LAYERS: tuple[frozenset[str], ...] = (
    # the foundation every stage uses (progress: the one-shot commands' bar, output plumbing like logconfig;
    # faults: the fault-injection points that only tests enable; processes: is a pid alive; nametext:
    # names that are not UTF-8, as text)
    frozenset({"errors", "model", "permissions", "logconfig", "progress", "faults", "processes", "nametext"}),
    frozenset({"files", "state"}),  # the file model and the ledger, at the bottom
    frozenset({"butler"}),  # the butler-facing engine
    frozenset({"archives"}),  # safe extraction (may compare files the way the engine does)
    frozenset({"config"}),  # one configuration for the service, built from the stages' settings
    # The operators' view (visits, hook, alerts, metrics, page): it reads what the stages record (state,
    # files) with the service's settings, and the service drives it; nothing below may depend on it.
    frozenset({"monitor"}),
    frozenset({"service"}),  # the service on top of every stage
    # The one-shot commands, the fake-data writer, and the old import paths that repositories record
    # (nothing may import those).
    frozenset({"oneshot", "fakedata", "formatters", "pfsraw", "pfsconfig"}),
    frozenset({"cli", "__main__"}),  # the command line, on top of everything
)
COMPAT = frozenset({"pfswatchd.formatters", "pfswatchd.pfsraw", "pfswatchd.pfsconfig"})


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The pfswatchd modules ``name`` imports (``from pkg import module`` counts as the module)."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                root = ".".join(base[: len(base) - node.level + 1])
                module = f"{root}.{module}" if node.module else root
            out.add(module)
            out |= {f"{module}.{alias.name}" for alias in node.names}
    return {target for target in out if target in known and target != name and target != "pfswatchd"}


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(module: str) -> tuple[int, str]:
    """(layer index, sub-package or top-level module name) of a pfswatchd module."""
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else ""
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index, unit
    raise AssertionError(f"{module}: not placed in any layer of tests/test_layout.py; add it to LAYERS")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def wrong_way(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer, or sideways into another sub-package of the same layer."""
    problems = []
    for source, targets in sorted(edges.items()):
        if source == "pfswatchd" or source.endswith(".__main__"):
            continue
        source_layer, source_unit = layer(source)
        for target in sorted(targets):
            target_layer, target_unit = layer(target)
            if target in COMPAT:
                problems.append(f"{source} imports {target}, an old import path kept only for repositories")
            elif target_layer > source_layer:
                problems.append(f"{source} (layer {source_unit}) imports {target}, which is higher up "
                                f"(layer {target_unit})")
            elif target_layer == source_layer and target_unit != source_unit and target_layer != 0:
                problems.append(f"{source} imports {target}: {source_unit} and {target_unit} are side by "
                                "side and must not depend on each other")
    return problems


def test_no_module_imports_itself_back_through_others():
    """No import cycle anywhere in the package."""
    assert cycles(graph()) == []


def test_imports_run_down_the_stages():
    """A stage imports only its own sub-package and the layers below it."""
    assert wrong_way(graph()) == []


def test_every_module_has_a_layer():
    """A new module must be placed in a layer (so the rule above covers it)."""
    for name in modules():
        if name != "pfswatchd":
            layer(name)


def test_the_folder_listing_shows_the_stages():
    """The sub-packages named in the README's "How it works" exist, each with its docstring."""
    for unit in ("service", "archives", "butler", "files", "state", "fakedata"):
        init = PACKAGE / unit / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), unit


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        # A cycle inside one stage.
        ({"files/names.py": "from pfswatchd.files import classify\n"}, "cycle"),
        # A lower stage importing a higher one.
        ({"files/names.py": "from pfswatchd.butler import ingest\n"}, "higher up"),
        # Side by side: the ledger must not depend on the file model.
        ({"state/ledger.py": "from pfswatchd.files.names import parse_name\n"}, "side by side"),
        # Package code must not use the old import paths.
        ({"butler/ingest.py": "from pfswatchd.pfsraw import PfsRaw\n"}, "old import path"),
    ],
)
def test_the_checks_catch_a_planted_import(tmp_path, planted, expected):
    """The checks fail on a copy of the package with one bad import added (so they can fail)."""
    import shutil

    copy = tmp_path / "pfswatchd"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, line in planted.items():
        target = copy / relative
        target.write_text(target.read_text() + "\n" + line)
    edges = graph(copy)
    problems = [" -> ".join(c) for c in cycles(edges)] if expected == "cycle" else wrong_way(edges)
    assert problems, planted
    if expected != "cycle":
        assert any(expected in problem for problem in problems), problems
