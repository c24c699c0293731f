"""The layout the project promises: nodes are wiring, methods live in one library module each,
benchmarks and notebooks call the library, and the library does not import Kedro."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cellbench"
MAX_NODE_LINES = 15


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    return [n for n in tree.body if isinstance(n, ast.FunctionDef)]


@pytest.mark.parametrize("nodes", sorted((SRC / "pipelines").glob("*/nodes.py")), ids=lambda p: p.parent.name)
def test_nodes_are_wiring(nodes):
    """Every node function is at most ~15 lines (docstring excluded): it validates its section and
    calls the library."""
    for fn in _functions(nodes):
        body = fn.body[1:] if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(
            getattr(fn.body[0], "value", None), ast.Constant) else fn.body
        lines = (body[-1].end_lineno - body[0].lineno + 1) if body else 0
        assert lines <= MAX_NODE_LINES, f"{nodes.parent.name}.{fn.name}: {lines} lines"


def test_benchmarks_and_notebooks_call_the_library_not_nodes():
    for path in sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "notebooks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("cellbench.pipelines"), f"{path.name} imports {node.module}"


def test_library_does_not_import_kedro():
    allowed = {"pipelines", "datasets", "hooks.py", "settings.py", "pipeline_registry.py", "__main__.py"}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "kedro" or n.startswith("kedro.") for n in names), f"{rel} imports kedro"


def test_every_method_has_one_module_with_a_config_and_an_entry_point():
    import inspect

    from cellbench.config import Config
    from cellbench.representations import METHODS

    for name, (module, config) in METHODS.items():
        assert issubclass(config, Config), name
        assert list(inspect.signature(module.represent).parameters) == ["crops", "config", "device"], name
