"""The asyncio twin and its streams stand on the sync client's public names only.

Checked on the source with ``ast``: no ``something._private`` of another object, no
``getattr`` around that rule, and no import path from the streams (or the client) back
to the twin, so the three cannot grow into one another again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tars_mqtt

PACKAGE = Path(tars_mqtt.__file__).parent
TWINS = ("aio", "streams")


def _files(module: str) -> list[Path]:
    """A module's source, or every source of a subpackage (``transport/``)."""
    folder = PACKAGE / module
    return sorted(folder.glob("*.py")) if folder.is_dir() else [PACKAGE / f"{module}.py"]


def _tree(module: str) -> ast.Module:
    return ast.Module(body=[node for path in _files(module)
                            for node in ast.parse(path.read_text(encoding="utf-8")).body],
                      type_ignores=[])


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("module", TWINS)
def test_no_private_name_of_another_object(module: str) -> None:
    found = []
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id == "self"):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert found == [], f"{module}.py reaches into private names: {found}"


def _imports(module: str) -> set[str]:
    """The tars_mqtt modules ``module`` imports, under TYPE_CHECKING too."""
    names: set[str] = set()
    level = 2 if (PACKAGE / module).is_dir() else 1  # `from ..x` inside a subpackage
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom) and node.level == level:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tars_mqtt."):
            names.add((node.module or "").split(".")[1])
    return {name for name in names
            if (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir()}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in _imports(todo.pop()) - seen:
            seen.add(name)
            todo.append(name)
    return seen


def test_streams_depend_on_the_client_never_on_the_twin() -> None:
    assert "client" in _imports("streams")
    assert "aio" not in _reachable("streams")
    assert _imports("aio") >= {"client", "streams"}


def test_the_client_knows_neither_twin_nor_streams() -> None:
    reachable = _reachable("client")
    assert not reachable & set(TWINS), reachable & set(TWINS)


def test_the_transport_does_not_import_the_dispatcher() -> None:
    assert "dispatch" not in _imports("transport")
    assert "envelope" in _imports("transport")  # Inbound lives beside Message


def test_paho_is_imported_in_one_module() -> None:
    """Every paho name the client uses, its internals included, is listed in paho_api."""
    importers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "paho" or name.startswith("paho.") for name in names):
                importers.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(importers)) == ["transport/paho_api.py"]
