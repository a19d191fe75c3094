"""docs/topics.md is the topic table: regenerate it with ``python -m services.topics_doc``."""

from __future__ import annotations

from services.topics import TABLE
from services.topics_doc import DOC, render


def test_topics_md_is_rendered_from_the_table() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), \
        "docs/topics.md is stale: run `python -m services.topics_doc`"


def test_every_topic_has_its_section_with_each_field() -> None:
    text = DOC.read_text(encoding="utf-8")
    for spec in TABLE:
        section = text.split(f"\n## {spec.name}\n", 1)
        assert len(section) == 2, f"no section for {spec.name}"
        body = section[1].split("\n## ", 1)[0]
        assert f"event type `{spec.event_type}`" in body
        for field in spec.fields:
            assert f"| `{field}` |" in body, f"{spec.name}: field {field} missing"
