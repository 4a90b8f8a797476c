"""No import cycles in chalicelib/: none between two modules, none between two folders.

The layers themselves are import-linter's contracts (pyproject.toml, `make lint`); a cycle
inside one layer slips past them, so this walks grimp's graph (import-linter's own) for it.
Imports under `if TYPE_CHECKING:` count too: a cycle only a type checker walks is still two
modules that cannot be understood one without the other.
"""

from __future__ import annotations

from itertools import combinations

import grimp
import pytest

PACKAGE = "chalicelib"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=False, cache_dir=None)


def _folder(graph: grimp.ImportGraph, module: str) -> str:
    """The folder a module is a file of: a package is its own folder."""
    return module if graph.find_children(module) else module.rpartition(".")[0]


def test_no_two_modules_import_each_other(graph: grimp.ImportGraph) -> None:
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.append(" -> ".join((module, *chain)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_two_folders_import_each_other(graph: grimp.ImportGraph) -> None:
    # Folders under chalicelib/ (the top-level modules, config.py and participant.py, are no
    # folder), each with its files only: a subfolder is a folder of its own.
    edges: set[tuple[str, str]] = set()
    for module in graph.modules:
        source = _folder(graph, module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = _folder(graph, imported)
            if source != target and PACKAGE not in (source, target):
                edges.add((source, target))
    folders = sorted({folder for edge in edges for folder in edge})
    both_ways = [f"{a} <-> {b}" for a, b in combinations(folders, 2)
                 if (a, b) in edges and (b, a) in edges]
    assert not both_ways, "folders importing each other:\n" + "\n".join(both_ways)
    # Longer loops (a -> b -> c -> a) as well: follow the edges from every folder.
    for start in folders:
        seen, frontier = set(), {b for a, b in edges if a == start}
        while frontier:
            seen |= frontier
            frontier = {b for a, b in edges if a in frontier} - seen
        assert start not in seen, f"{start} reaches itself through other folders"
