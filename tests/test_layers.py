"""The layers point down: nothing below the API imports it (issue 23, "Shape": the
Responses service imported the API's request body). Only the app factory, which wires
the routers, the command line, which starts it, and the seeds' compatibility routes
(`compat/`, the API's own layer) may."""

from __future__ import annotations

import ast
from pathlib import Path

import symposia

PACKAGE = Path(symposia.__file__).parent
# `compat` holds the seed systems' HTTP surfaces: routes of the API's own layer.
ABOVE_THE_API = {"app.py", "cli", "compat"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_no_module_below_the_api_imports_it() -> None:
    upward = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imports(path) if name.split(".")[:2] == ["symposia", "api"]
        )
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in {"api", *ABOVE_THE_API}
    }
    assert {module: names for module, names in upward.items() if names} == {}
