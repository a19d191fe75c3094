"""What tars-llm keeps of other clients' retained health: bounded, the robot's own first.

Every tool run under a new client id leaves its retained ``system/health/<id>`` on the
broker for ever; after months there are hundreds, and on a restart they arrive before or
after the memory's own. The memory must still be seen up, or answers lose their memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.llm import MAX_PEERS, LLMService, admit
from services.llm_settings import LLMSettings

from .support import message


class Stub:
    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        pass


def health(client: str, ok: bool) -> Any:
    return message(f"system/health/{client}", {"ok": ok, "event": "ready" if ok else "offline"})


def test_the_robots_own_services_are_kept_whatever_came_before() -> None:
    service = LLMService(Stub(), LLMSettings.from_env({}))  # type: ignore[arg-type]

    async def feed() -> None:
        for n in range(MAX_PEERS + 20):
            await service.on_health(health(f"tools-{n}", n % 2 == 0))
        await service.on_health(health("memory", True))

    asyncio.run(feed())
    seen = service.answers.health
    assert seen["memory"] is True and len(seen) <= MAX_PEERS + 1
    assert service.tally["peers_ignored"] == 0  # the down ones made room for the rest


def test_admit_bounds_other_clients_and_replaces_one_that_is_down() -> None:
    kept = {f"t{n}": True for n in range(3)}
    assert not admit(kept, "t9", limit=3)  # full of live ones
    assert admit(kept, "t0", limit=3) and admit(kept, "router", limit=3)
    kept["t1"] = False
    assert admit(kept, "t9", limit=3) and "t1" not in kept


def test_a_health_topic_that_is_no_client_id_is_refused() -> None:
    service = LLMService(Stub(), LLMSettings.from_env({}))  # type: ignore[arg-type]

    async def feed() -> None:
        for name in ("x\nERROR forged", "a" * 65, "two words", "ok-id_1.b:2"):
            await service.on_health(health(name, True))

    asyncio.run(feed())
    assert list(service.answers.health) == ["ok-id_1.b:2"]
    assert service.tally["malformed"] == 3
