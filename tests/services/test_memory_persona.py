"""The persona file: shipped default, validation naming the field, updates, atomic saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.memory_settings import MemorySettings, load_persona
from services.persona import PersonaError, dump, from_data, load, parse, save


def test_the_shipped_persona_round_trips_through_toml(tmp_path: Path) -> None:
    persona = load()
    assert persona.name == "TARS" and persona.traits["humor"] == 75
    assert parse(dump(persona)) == persona
    changed = persona.with_trait("humor", 60.4).with_trait("sarcasm", 5)
    save(changed, tmp_path / "p.toml")
    assert load(tmp_path / "p.toml") == changed and changed.traits["humor"] == 60
    assert from_data(changed.to_data()) == changed
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed


@pytest.mark.parametrize(("text", "says"), [
    ("name = ", "not TOML"),
    ("", "name must be one line"),
    ('name = ""', "must not be empty"),
    ('name = "T"\nextra = 1', "unknown keys"),
    ('name = "T"\n[traits]\nhumor = 101', "0 to 100"),
    ('name = "T"\n[traits]\nhumor = true', "0 to 100"),
    ('name = "T"\n[traits]\nHumor = 5', "lower-case word"),
    ('name = "T"\n[voice]\nrate = inf', "short text or a number"),
    ('name = "T"\ntraits = 3', "[traits] must be a table"),
])
def test_a_bad_persona_names_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(PersonaError, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse(text)


def test_updates_are_checked() -> None:
    persona = load()
    for trait, value in (("humor", 400), ("humor", "high"), ("x" * 40, 5), (None, 5),
                         ("humor", float("nan"))):
        with pytest.raises(PersonaError):
            persona.with_trait(trait, value)
    many = persona
    with pytest.raises(PersonaError, match="at most 16"):
        for n in range(20):
            many = many.with_trait(f"t{chr(97 + n)}", 1)


def test_a_saved_persona_that_no_longer_reads_is_moved_aside(tmp_path: Path) -> None:
    settings = MemorySettings(tmp_path)
    (tmp_path / "persona.toml").write_text("garbage = [")
    assert load_persona(settings) == load()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("persona.toml.broken-")]
