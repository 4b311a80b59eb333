"""The package's layers import one way: tasks <- data <- common <- iql <- datasets <- zoo (and the package root and CLI
above all)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sb3_iql"
LAYERS = {"tasks": 0, "data": 1, "common": 2, "iql": 3, "datasets": 4, "zoo": 5}
TOP = 6  # sb3_iql/__init__.py, sb3_iql/cli.py


def layer_of(module: str) -> int | None:
    """:return: The layer of an ``sb3_iql.<layer>...`` module name (``TOP`` for the root and the CLI), else None."""
    parts = module.split(".")
    if parts[0] != "sb3_iql":
        return None
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 else TOP


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, at the top or inside functions."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_its_own(path):
    own = layer_of("sb3_iql." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    upward = [module for module in imported_modules(path) if (layer := layer_of(module)) is not None and layer > own]
    assert not upward, f"{path.relative_to(PACKAGE)} (layer {own}) imports from above: {upward}"


def test_the_layers_exist():
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()} == set(LAYERS)
