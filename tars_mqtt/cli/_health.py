"""``tars-mqtt health``: the table of what every client last said about itself.

The rules that judge a client (ok, stale, waiting, judged or not) are
:class:`tars_mqtt.health.HealthBook`'s, shared with the web view; the command only feeds
it and prints its rows.
"""

from __future__ import annotations

from ..health import HealthBook, Row, age
from ._show import safe

__all__ = ["HEALTH_FILTER", "KEEPALIVE_FILTER", "HealthBook", "Row", "age", "render"]

HEALTH_FILTER = "system/health/#"
KEEPALIVE_FILTER = "system/keepalive/#"


def render(rows: list[Row]) -> str:
    """The table: client, ok, event, age of health, age of last heartbeat, status."""
    head = ("CLIENT", "OK", "EVENT", "HEALTH AGE", "HEARTBEAT", "STATUS")
    lines = [head] + [
        (safe(r.client), {True: "yes", False: "no", None: "-"}[r.ok], safe(r.event),
         age(r.health_age), age(r.beat_age), safe(r.status))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True))
        + "  " + line[-1]
        for line in lines
    )
