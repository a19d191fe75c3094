"""docs/api.md documents exactly the exported names, with the code's parameters and errors."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import textwrap
from types import ModuleType
from typing import Any

import pytest

from .support import ROOT

DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
MODULES = ("tars_mqtt", "tars_mqtt.aio", "tars_mqtt.testing")
_SIGNATURE = re.compile(r"^(?:await )?([A-Za-z_]\w*)\((.*)\)$")


def module_section(name: str) -> str:
    """The text under ``## `name` `` up to the next ``## ``."""
    parts = re.split(r"^## ", DOC, flags=re.M)
    for part in parts:
        if part.startswith(f"`{name}`\n"):
            return part
    raise AssertionError(f"docs/api.md has no section ## `{name}`")


def name_sections(module: str) -> dict[str, str]:
    """Exported name -> the text of the ``###`` section that names it."""
    found: dict[str, str] = {}
    for part in re.split(r"^### ", module_section(module), flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        names = re.findall(r"`([A-Za-z_]\w*)`", heading)
        assert names, f"### {heading}: name the export(s) in `code`"
        for name in names:
            assert name not in found, f"{name} documented twice"
            found[name] = heading + "\n" + body
    return found


def items(section: str) -> list[str]:
    """The bullet items of a section, each with its continuation lines."""
    out: list[str] = []
    in_code = False
    for line in section.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        if line.startswith("- "):
            out.append(line[2:])
        elif line.startswith("  ") and out:
            out[-1] += " " + line.strip()
        elif not line.strip() and out:
            out.append("")
    return [i for i in out if i]


def signatures(section: str) -> dict[str, tuple[str, str]]:
    """Documented call name -> (its parameter text, the whole item it is in).

    ``name()`` with nothing inside is a mere mention when the section also has the call
    with its parameters (``messages()`` in one item, ``messages(topic_filter, ...)``).
    """
    found: dict[str, tuple[str, str]] = {}
    for item in items(section):
        for span in re.findall(r"`([^`]+)`", item):
            match = _SIGNATURE.match(span.strip())
            if match and (match.group(1) not in found or not found[match.group(1)][0]):
                found[match.group(1)] = (match.group(2), item)
    return found


def own_methods(cls: type) -> list[str]:
    """Public methods defined by ``cls`` itself (not by a decorator's mixin)."""
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        func = value.__func__ if isinstance(value, classmethod | staticmethod) else value
        if inspect.isfunction(func) and func.__qualname__.startswith(cls.__name__ + "."):
            names.append(name)
    return names


def public_attributes(cls: type) -> list[str]:
    """Properties, dataclass fields and ``self.x = ...`` in ``__init__`` (public only)."""
    names = [n for n, v in vars(cls).items() if isinstance(v, property) and n[0] != "_"]
    if dataclasses.is_dataclass(cls):
        names += [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    init = vars(cls).get("__init__")
    if inspect.isfunction(init) and not dataclasses.is_dataclass(cls):
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        for node in ast.walk(tree):
            for target in getattr(node, "targets", [getattr(node, "target", None)]):
                elts = target.elts if isinstance(target, ast.Tuple) else [target]
                for elt in elts:
                    if (isinstance(elt, ast.Attribute) and isinstance(elt.value, ast.Name)
                            and elt.value.id == "self" and not elt.attr.startswith("_")):
                        names.append(elt.attr)
    return sorted(set(names))


def documented_parameters(text: str) -> list[tuple[str, str, Any]]:
    """``a, b=1, *, c=None`` -> [(name, kind, default)] with kind as inspect names it."""
    args = ast.parse(f"def f({text}): pass").body[0].args  # type: ignore[attr-defined]
    out: list[tuple[str, str, Any]] = []
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults]
    for arg, default in zip(positional, defaults, strict=True):
        out.append((arg.arg, "POSITIONAL_OR_KEYWORD", default))
    if args.vararg:
        out.append((args.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        value = inspect.Parameter.empty if kw_default is None else ast.literal_eval(kw_default)
        out.append((arg.arg, "KEYWORD_ONLY", value))
    if args.kwarg:
        out.append((args.kwarg.arg, "VAR_KEYWORD", inspect.Parameter.empty))
    return out


def real_parameters(func: Any) -> list[tuple[str, str, Any]]:
    out = []
    for p in inspect.signature(func).parameters.values():
        if p.name in ("self", "cls"):
            continue
        kind = "POSITIONAL_OR_KEYWORD" if p.kind is p.POSITIONAL_ONLY else p.kind.name
        out.append((p.name, kind, p.default))
    return out


def check_signature(owner: str, func: Any, text: str) -> None:
    documented = documented_parameters(text)
    real = real_parameters(func)
    if inspect.isclass(func) and dataclasses.is_dataclass(func) and \
            [d[:2] for d in documented] == [("fields", "VAR_KEYWORD")]:
        return  # `Name(**fields)`: the fields are listed in the section
    assert [d[:2] for d in documented] == [r[:2] for r in real], \
        f"{owner}({text}): the code takes {inspect.signature(func)}"
    for (name, _, doc_default), (_, _, real_default) in zip(documented, real, strict=True):
        if doc_default is Ellipsis:  # `...`: a computed default (a dataclass factory)
            assert real_default is not inspect.Parameter.empty, f"{owner}: {name} is required"
        else:
            assert doc_default == real_default, \
                f"{owner}: {name} defaults to {real_default!r}, documented {doc_default!r}"


def docstring_raises(func: Any) -> list[str]:
    doc = inspect.getdoc(func) or ""
    if "Raises:" not in doc:
        return []
    block = doc.split("Raises:", 1)[1]
    names = []
    for line in block.splitlines()[1:]:
        if not line.startswith("    "):
            break
        match = re.match(r"\s+(\w+):", line)
        if match:
            names.append(match.group(1))
    return names


def module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("modname", MODULES)
def test_documented_names_are_exactly_the_exports(modname: str) -> None:
    assert set(name_sections(modname)) == set(module(modname).__all__)


EXPORTS = [(m, n) for m in MODULES for n in module(m).__all__]


@pytest.mark.parametrize(("modname", "name"), EXPORTS, ids=lambda x: str(x))
def test_every_public_method_has_its_signature(modname: str, name: str) -> None:
    obj = getattr(module(modname), name)
    section = name_sections(modname)[name]
    documented = signatures(section)
    if inspect.isclass(obj):
        for method in own_methods(obj):
            assert method in documented, f"{name}.{method} has no `{method}(...)` entry"
            check_signature(f"{name}.{method}", getattr(obj, method), documented[method][0])
        if name in documented:
            check_signature(name, obj, documented[name][0])
        for attribute in public_attributes(obj):
            assert f"`{attribute}`" in section, f"{name}.{attribute} is not mentioned"
    elif callable(obj):
        assert name in documented, f"{name} has no `{name}(...)` entry"
        check_signature(name, obj, documented[name][0])


def test_constructors_users_call_are_documented() -> None:
    sections = {**name_sections("tars_mqtt"), **name_sections("tars_mqtt.aio"),
                **name_sections("tars_mqtt.testing")}
    for name in ("MQTTConfig", "MQTTClient", "Envelope", "ConfigError", "ConnectError",
                 "AsyncMQTTClient", "Broker", "ManualClock"):
        assert name in signatures(sections[name]), f"document `{name}(...)`"


@pytest.mark.parametrize(("modname", "name"), EXPORTS, ids=lambda x: str(x))
def test_every_raised_error_is_named(modname: str, name: str) -> None:
    obj = getattr(module(modname), name)
    if not inspect.isclass(obj):
        return
    documented = signatures(name_sections(modname)[name])
    for method in own_methods(obj):
        for error in docstring_raises(getattr(obj, method)):
            assert f"`{error}`" in documented[method][1], \
                f"{name}.{method} raises {error} (its docstring says), the entry does not say"


@pytest.mark.parametrize(("modname", "name"), EXPORTS, ids=lambda x: str(x))
def test_every_class_has_an_example(modname: str, name: str) -> None:
    if inspect.isclass(getattr(module(modname), name)):
        assert "```python" in name_sections(modname)[name], f"{name}: add a short example"


def test_the_checks_catch_a_wrong_default() -> None:
    from tars_mqtt import MQTTClient

    with pytest.raises(AssertionError, match="defaults to 10.0"):
        check_signature("MQTTClient.start", MQTTClient.start, "timeout=5.0")
    with pytest.raises(AssertionError, match="the code takes"):
        check_signature("MQTTClient.start", MQTTClient.start, "timeout=10.0, extra=1")
