"""docs/topics.md, rendered from the topic table so the reference cannot drift from it.

``python -m services.topics_doc`` rewrites the file; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .topics import TABLE, TopicSpec

__all__ = ["DOC", "render"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "topics.md"

_HEAD = """\
# Topics

Every topic the robot's services use: who publishes it, who subscribes, with which QoS
and retain flag, and the fields of the envelope's `data`. This page is generated from
`services/topics.py` (`python -m services.topics_doc`), the table the services publish
and subscribe from; a test fails when the two differ, and another watches the broker's
log while the services run to check they keep to it. The envelope itself, and the
`system/health`, `system/keepalive` and `system/reply` topics every client uses, are in
[api.md](api.md).

## Summary

| topic | QoS | retain | event type | published by | subscribed by |
|---|---|---|---|---|---|
"""

_TYPES = {str: "string", int: "integer", float: "number", dict: "object", list: "array",
          bool: "boolean"}


def _kinds(kinds: tuple[type, ...]) -> str:
    names = [_TYPES.get(k, k.__name__) for k in kinds]
    return "number" if set(names) == {"integer", "number"} else " or ".join(names)


def _who(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "-"


def _fields(spec: TopicSpec) -> list[str]:
    lines = ["| field | type | required | values |", "|---|---|---|---|"]
    for name, kinds in spec.fields.items():
        values = ", ".join(f"`{v}`" for v in sorted(spec.values.get(name, ()))) or "any"
        required = "no" if name in spec.optional else "yes"
        lines.append(f"| `{name}` | {_kinds(kinds)} | {required} | {values} |")
    return lines


def render() -> str:
    """The whole of docs/topics.md."""
    rows = sorted(TABLE, key=lambda s: s.name)
    out = [_HEAD.rstrip("\n")]
    for spec in rows:
        out.append(f"| [`{spec.name}`](#{spec.name.replace('/', '')}) | {spec.qos} |"
                   f" {'yes' if spec.retain else 'no'} | `{spec.event_type}` |"
                   f" {_who(spec.publishers)} | {_who(spec.subscribers)} |")
    for spec in rows:
        out += ["", f"## {spec.name}", "",
                f"QoS {spec.qos}, {'retained' if spec.retain else 'not retained'}, event type"
                f" `{spec.event_type}`. Published by {_who(spec.publishers)}; subscribed by"
                f" {_who(spec.subscribers)}.", "", *_fields(spec)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}\n")
