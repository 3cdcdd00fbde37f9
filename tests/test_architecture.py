"""
The shape of the code (docs/architecture.md): the boundaries of pyproject's [tool.importlinter]
contracts hold, and no module imports itself back through others, function-local imports included.
"""

from pathlib import Path

from importlinter.cli import lint_imports

from scripts import import_graph

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(no_cache=True, no_logo=True) == 0  # the broken contract is printed above


def test_no_module_imports_itself_back_through_others():
    # Every import counts, the ones inside functions too; only AppConfig.ready()'s wiring is left out.
    assert import_graph.circles(import_graph.module_graph(import_graph.all_imports())) == []


def test_the_circle_finder_sees_a_circle_made_by_a_function_local_import():
    graph = import_graph.module_graph(
        [
            import_graph.Import("a.services", "a.tasks", 1, local=True, in_ready=False),
            import_graph.Import("a.tasks", "a.services", 1, local=False, in_ready=False),
            import_graph.Import("a.apps", "a.services", 1, local=True, in_ready=True),
            import_graph.Import("a.services", "a.apps", 1, local=False, in_ready=False),
        ]
    )
    assert import_graph.circles(graph) == [["a.services", "a.tasks"]]


def test_the_import_picture_in_docs_architecture_is_current():
    # Stale: run `python scripts/import_graph.py --write`.
    assert import_graph.doc_block() == import_graph.mermaid(import_graph.all_imports())
