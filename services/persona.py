"""The robot's persona: a small TOML file (name, description, traits 0..100, voice), pure.

``load`` validates a file and names what is wrong; ``Persona.with_trait`` is the one way to
change it; ``dump`` writes it back as TOML that ``load`` reads again, and ``save`` does so
atomically (a kill mid-write leaves the old file, never half a new one).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PERSONA", "Persona", "PersonaError", "dump", "from_data", "load", "parse", "save",
]

DEFAULT_PERSONA = "persona.toml"  # shipped in the services package
_TRAIT = re.compile(r"^[a-z][a-z_]{0,31}$")
_MAX_TRAITS = 16
_MAX_TEXT = 200
Voice = dict[str, str | int | float]


class PersonaError(ValueError):
    """A persona file or update that does not fit; the message says which field."""


@dataclass(frozen=True)
class Persona:
    """Who the robot is. ``traits`` are whole percentages (``{"humor": 75}``)."""

    name: str
    description: str = ""
    traits: dict[str, int] = field(default_factory=dict)
    voice: Voice = field(default_factory=dict)

    def with_trait(self, trait: Any, value: Any) -> Persona:
        """A copy with ``trait`` set to ``value`` (rounded, 0..100); a new trait is added."""
        if not isinstance(trait, str) or not _TRAIT.match(trait):
            raise PersonaError(f"trait must be a lower-case word (a-z, _; up to 32), got"
                               f" {_shown(trait)}")
        traits = dict(self.traits)
        traits[trait] = _percent(f"trait {trait!r}", value)
        if len(traits) > _MAX_TRAITS:
            raise PersonaError(f"a persona has at most {_MAX_TRAITS} traits")
        return replace(self, traits=traits)

    def to_data(self) -> dict[str, Any]:
        """The ``system/character/current`` data."""
        return {"name": self.name, "description": self.description, "traits": dict(self.traits),
                "voice": dict(self.voice)}


def parse(text: str, where: str = "persona") -> Persona:
    """A persona from TOML text.

    Raises:
        PersonaError: not TOML, or a field missing or of the wrong kind (named).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{where}: not TOML: {exc}") from None
    return from_data(raw, where)


def from_data(raw: Any, where: str = "persona") -> Persona:
    """A persona from parsed TOML or a ``system/character/current`` payload's data.

    Raises:
        PersonaError: a field missing or of the wrong kind (named).
    """
    if not isinstance(raw, dict):
        raise PersonaError(f"{where}: must be a table, got {type(raw).__name__}")
    unknown = set(raw) - {"name", "description", "traits", "voice"}
    if unknown:
        raise PersonaError(f"{where}: unknown keys {sorted(unknown, key=str)[:5]}")
    name, description = raw.get("name"), raw.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str) or len(value) > _MAX_TEXT or "\n" in value:
            raise PersonaError(f"{where}: {key} must be one line of text (up to {_MAX_TEXT})")
    assert isinstance(name, str) and isinstance(description, str)
    if not name.strip():
        raise PersonaError(f"{where}: name must not be empty")
    persona = Persona(name.strip(), description.strip(), {}, _voice(where, raw.get("voice", {})))
    traits = raw.get("traits", {})
    if not isinstance(traits, dict):
        raise PersonaError(f"{where}: [traits] must be a table of trait = 0..100")
    try:
        for trait, value in traits.items():
            persona = persona.with_trait(trait, value)
    except PersonaError as exc:
        raise PersonaError(f"{where}: {exc}") from None
    return persona


def load(path: Path | None = None) -> Persona:
    """The persona in ``path``, or the one shipped with the services.

    Raises:
        PersonaError: the file is unreadable or does not fit (its path and field named).
    """
    if path is None:
        text = (resources.files("services") / DEFAULT_PERSONA).read_text(encoding="utf-8")
        return parse(text, f"the shipped {DEFAULT_PERSONA}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise PersonaError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


def dump(persona: Persona) -> str:
    """TOML for ``persona`` (read back by :func:`parse` to an equal persona)."""
    lines = [f"name = {_quote(persona.name)}", f"description = {_quote(persona.description)}",
             "", "[traits]"]
    lines += [f"{trait} = {value}" for trait, value in persona.traits.items()]
    lines += ["", "[voice]"]
    lines += [f"{key} = {_value(value)}" for key, value in persona.voice.items()]
    return "\n".join(lines) + "\n"


def save(persona: Persona, path: Path) -> None:
    """Write ``path`` atomically and durably (temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(dump(persona))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _voice(where: str, voice: Any) -> Voice:
    if not isinstance(voice, dict):
        raise PersonaError(f"{where}: [voice] must be a table")
    out: Voice = {}
    if len(voice) > _MAX_TRAITS:
        raise PersonaError(f"{where}: [voice] has more than {_MAX_TRAITS} keys")
    for key, value in voice.items():
        if not isinstance(key, str):
            raise PersonaError(f"{where}: voice keys must be words")
        if isinstance(value, str):
            fits = len(value) <= _MAX_TEXT
        else:
            fits = isinstance(value, int | float) and not isinstance(value, bool) and (
                abs(value) < 1e9 if isinstance(value, int) else math.isfinite(value))
        if not _TRAIT.match(key) or not fits:
            raise PersonaError(f"{where}: voice {_shown(key)} must be a short text or a number")
        out[key] = value
    return out


def _percent(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise PersonaError(f"{what} must be a number from 0 to 100, got {_shown(value)}")
    return round(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _value(value: str | int | float) -> str:
    return _quote(value) if isinstance(value, str) else repr(value)
