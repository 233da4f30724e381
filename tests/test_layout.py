"""The shape of ``app/`` stays as the README draws it: layers that import only downward, and no cycles.

The imports are read from the source with ``ast`` (every import, at the top
of a module or inside a function), so nothing is run to find them.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

LAYERS = [
    {"app.core", "app.file_stream"},
    {"app.storage", "app.media"},
    {"app.catalog"},
    {"app.jobs"},
    {"app.library", "app.uploads", "app.delivery"},
    {"app.services"},
    {"app.api"},
    {"app.web"},
    {"app.main", "app.cli", "app.server", "app.admin", "app.worker"},
    {"app.__main__"},
]
"""Lowest first. A module imports from lower layers and from inside its own package, never upward or sideways."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names (``from app.media import probe`` names ``app.media.probe``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base for alias in node.names]


@cache
def imports_of(module: str) -> frozenset[str]:
    tree = ast.parse(modules()[module].read_text())
    return frozenset(name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                     for name in _imported(node))


def app_imports_of(module: str) -> set[str]:
    return {name for name in imports_of(module) if name == "app" or name.startswith("app.")}


def package_of(module: str) -> str:
    """The unit a layer lists: ``app.storage.s3`` belongs to ``app.storage``, ``app.main`` to itself."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if package_of(module) in layer)


def test_every_module_of_app_has_a_layer():
    unplaced = [module for module in modules() if module != "app" and package_of(module) not in set().union(*LAYERS)]
    assert unplaced == []


@pytest.mark.parametrize("module", [module for module in modules() if module != "app"])
def test_a_module_imports_only_downward_or_inside_its_own_package(module):
    wrong = [imported for imported in app_imports_of(module)
             if package_of(imported) != package_of(module) and layer_of(imported) >= layer_of(module)]
    assert wrong == [], f"{module} imports {wrong} from its own layer or above"


def test_there_is_no_import_cycle_inside_app():
    graph = {module: {name for name in app_imports_of(module) if name in modules() and name != "app"}
             for module in modules()}
    assert _cycles(graph) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk meets (one per back edge)."""
    found, state = [], {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_http_helper_imports_nothing_from_app():
    assert app_imports_of("app.file_stream") == set()


def test_only_the_media_workers_modules_load_pyav():
    """Probing and making renditions and storyboards run in worker processes: nothing the server imports loads
    PyAV."""
    assert [module for module in modules() if any(name.split(".")[0] == "av" for name in imports_of(module))] \
        == ["app.media.probe", "app.media.renditions", "app.media.storyboard", "app.media.upright"]


def test_only_the_s3_implementations_load_obstore():
    users = {module for module in modules() if any(name.split(".")[0] == "obstore" for name in imports_of(module))}
    assert users == {"app.storage.s3", "app.storage.s3_claims", "app.storage.s3_versions", "app.uploads.s3_sessions"}


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
