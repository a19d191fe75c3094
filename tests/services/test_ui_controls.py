"""The web view's controls: what one page can make the service hold on to.

STOP is never rate-limited (a stop must always go out), so a page that floods it must not
grow the list of answers the service awaits, each checked against every bus message.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from services.ui.controls import MAX_WAITS, Controls
from services.ui.hub import Connection
from services.ui.protocol import Command


class Bus:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish_event(self, topic: str, *args: Any, **kwargs: Any) -> None:
        self.sent.append(topic)


async def _send(text: str) -> None:
    pass


def test_a_page_flooding_stop_sends_every_stop_and_awaits_a_bounded_number_of_answers(
        ) -> None:
    bus = Bus()
    controls = Controls(bus, lambda: 0.0)  # type: ignore[arg-type]
    page = Connection(_send, lambda conn: "{}", limit=1000)
    other = Connection(_send, lambda conn: "{}", limit=1000)

    async def flood() -> None:
        for n in range(MAX_WAITS * 3):
            await controls.run(page, Command("stop", id=f"s{n}"))
        await controls.run(other, Command("stop", id="o1"))

    asyncio.run(flood())
    assert bus.sent == ["movement/stop"] * (MAX_WAITS * 3 + 1)
    assert len(controls._waits) == MAX_WAITS + 1  # the other page is not crowded out
    results = [json.loads(f) for f in page._queue]
    assert sorted(r["id"] for r in results if r.get("state") == "sent") == sorted(
        f"s{n}" for n in range(MAX_WAITS * 3))  # each stop is told it went out
