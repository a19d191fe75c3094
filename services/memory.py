"""tars-memory: the conversation's memory and the robot's persona.

Stores every ``stt/final`` (heard) and ``tts/say`` (said) turn in SQLite FTS5
(:mod:`services.memory_store`) before its handler returns, so an acknowledged turn is on
disk; answers ``memory/query`` on ``memory/results``; publishes the persona retained on
``system/character/current``, answers ``character/get`` and applies ``character/update``
(saved in the state directory) on ``character/result``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tars_mqtt import ConfigError, Message
from tars_mqtt.aio import AsyncMQTTClient

from . import topics as t
from .common import UNSENDABLE, Tally, answer, problems
from .memory_settings import MemorySettings, load_persona
from .memory_store import MemoryStore, StoreError, Turn
from .persona import PersonaError, save
from .runtime import AsyncService, run_async

__all__ = ["MemoryService", "main", "setup"]

log = logging.getLogger("tars.memory")
K_MAX = 20
PRUNE_EVERY = 3600.0


class MemoryService:
    def __init__(self, client: AsyncMQTTClient, settings: MemorySettings) -> None:
        self.client, self.settings, self.tally = client, settings, Tally()
        self.store = MemoryStore(settings.database, max_age=settings.max_age,
                                 max_turns=settings.max_turns)
        try:
            self.store.open()
        except StoreError as exc:
            raise ConfigError(f"TARS_MEMORY_DIR: {exc}") from None
        self.persona = load_persona(settings)
        self._reported = 0
        for spec, handler in ((t.STT_FINAL, self.on_turn), (t.TTS_SAY, self.on_turn),
                              (t.MEMORY_QUERY, self.on_query), (t.CHARACTER_GET, self.on_get),
                              (t.CHARACTER_UPDATE, self.on_update)):
            client.subscribe(spec.name, handler, qos=spec.qos)
        log.info("memory in %s: %d turns; persona %s", settings.database, self.store.count(),
                 self.persona.name)

    async def on_turn(self, msg: Message) -> None:
        """Commit the turn before returning: the client acknowledges after the handler."""
        spec = t.spec_for(msg.topic)
        if self._bad(msg, spec) or msg.envelope is None or not msg.data["text"].strip():
            return
        role = "heard" if spec is t.STT_FINAL else "said"
        turn = Turn(role, msg.data["text"], msg.envelope.id[:64], (msg.correlate or "")[:64]
                    or None, msg.envelope.source[:64])
        try:
            if not await asyncio.to_thread(self.store.add, turn):
                self.tally.add("duplicates")
        except StoreError as exc:
            log.error("turn not stored: %s", exc)
            self.tally.add("not_stored")
        await self._report()

    async def on_query(self, msg: Message) -> None:
        """A query that does not fit is answered too, with an ``error`` naming the field."""
        wrong = self._bad(msg, t.MEMORY_QUERY)
        if wrong:
            await self._answer(msg, t.MEMORY_RESULTS, {"results": [], "error": wrong})
            return
        k = max(1, min(K_MAX, msg.data.get("k", 3)))
        try:
            hits = await asyncio.to_thread(self.store.query, msg.data["text"], k)
            data: dict[str, Any] = {"results": [h.to_data() for h in hits]}
        except StoreError as exc:
            data = {"results": [], "error": str(exc)}
        await self._answer(msg, t.MEMORY_RESULTS, data)
        await self._report()

    async def on_get(self, msg: Message) -> None:
        wrong = self._bad(msg, t.CHARACTER_GET)
        await self._answer(msg, t.CHARACTER_RESULT,
                           {**self.persona.to_data(), **({"error": wrong} if wrong else {})})

    async def on_update(self, msg: Message) -> None:
        """The trait is saved first; only then is it the persona (and published)."""
        error = self._bad(msg, t.CHARACTER_UPDATE)
        if not error:
            try:
                changed = self.persona.with_trait(msg.data["trait"], msg.data["value"])
                await asyncio.to_thread(save, changed, self.settings.persona_file)
                self.persona, error = changed, ""
                log.info("trait %s is now %d", msg.data["trait"],
                         changed.traits[msg.data["trait"]])
                await self.publish_persona()
            except (PersonaError, OSError) as exc:
                error = str(exc)
        await self._answer(msg, t.CHARACTER_RESULT,
                           {**self.persona.to_data(), **({"error": error} if error else {})})

    async def publish_persona(self) -> None:
        spec = t.CHARACTER_CURRENT
        try:
            await self.client.publish_event(spec.name, spec.event_type, self.persona.to_data(),
                                            qos=spec.qos, retain=spec.retain)
        except UNSENDABLE as exc:
            log.warning("persona not published: %s", exc)

    async def run(self) -> None:
        """Once connected: the persona, what went wrong at start, then pruning by age."""
        await self.publish_persona()
        while True:
            await self._report()
            await asyncio.sleep(PRUNE_EVERY)
            try:
                forgotten = await asyncio.to_thread(self.store.prune)
                log.info("forgot %d old turns", forgotten)
            except StoreError as exc:
                log.error("pruning failed: %s", exc)

    async def close(self) -> None:
        log.info("stopping; counts %s", self.tally.as_dict())
        self.store.close()

    async def _answer(self, msg: Message, spec: t.TopicSpec, data: dict[str, Any]) -> None:
        await answer(self.client, msg, spec, data, tally=self.tally)

    async def _report(self) -> None:
        """A damaged database found and replaced: say so in the retained health."""
        found = self.store.recovered[self._reported:]
        self._reported += len(found)
        for problem in found:
            try:
                await self.client.publish_health(True, "error", problem)
            except UNSENDABLE as exc:
                log.warning("health not published: %s", exc)

    def _bad(self, msg: Message, spec: t.TopicSpec) -> str:
        """Why ``msg`` does not fit ``spec`` (logged and counted), or "" when it does."""
        wrong = "; ".join(problems(msg, spec))
        if wrong:
            n = self.tally.add("malformed")
            log.warning("malformed message #%d on %s ignored: %s", n, msg.topic, wrong)
        return wrong


def setup(client: AsyncMQTTClient) -> AsyncService:
    """Settings (``TARS_MEMORY_*``, ``TARS_PERSONA``), the store and handlers."""
    service = MemoryService(client, MemorySettings.from_env())
    return AsyncService(main=service.run, close=service.close)


def main() -> int:
    """``tars-memory``."""
    return run_async("memory", setup)


if __name__ == "__main__":
    raise SystemExit(main())
