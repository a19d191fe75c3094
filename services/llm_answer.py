"""How tars-llm answers one request: memory first (with a deadline), then the endpoint's
stream or the offline responder, deltas on ``llm/stream``, one final ``llm/response``.

Every request gets exactly one final answer, correlated to it: the reply, or the text so
far with an ``error`` (the endpoint failed, the answer took too long, it was cancelled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx

from tars_mqtt import Message, MQTTError, RequestTimeout
from tars_mqtt.aio import AsyncMQTTClient

from . import topics as t
from .common import UNSENDABLE, Tally, answer
from .llm_http import EndpointError, stream_chat
from .llm_prompt import build_messages, clean_history, useful_memories
from .llm_settings import LLMSettings
from .persona import Persona
from .skills import Facts, respond

__all__ = ["Answerer"]

log = logging.getLogger("tars.llm")


class Answerer:
    """The requests being answered (``active``: request id → task, session)."""

    def __init__(self, client: AsyncMQTTClient, settings: LLMSettings,
                 http: httpx.AsyncClient | None, tally: Tally, *,
                 now: Callable[[], datetime] = datetime.now) -> None:
        self.client, self.settings, self.http, self.tally = client, settings, http, tally
        self.persona: Persona = settings.persona
        self.health: dict[str, bool] = {}  # client id -> ok, from retained health
        self.active: dict[str, tuple[asyncio.Task[None], str, float]] = {}
        self._now = now

    def start(self, msg: Message, text: str, history: Any, session: str,
              turn: int | None) -> str | None:
        """Begin answering ``msg``; why not (busy), or None."""
        assert msg.envelope is not None
        rid = msg.envelope.id
        if rid in self.active:
            return None  # a redelivery of a request being answered
        if len(self.active) >= self.settings.max_streams:
            return f"busy: already writing {len(self.active)} answers"
        task = asyncio.create_task(self._answer(msg, text, clean_history(history), turn))
        self.active[rid] = (task, session, msg.envelope.ts)
        task.add_done_callback(lambda _: self.active.pop(rid, None))
        return None

    def cancel(self, request: str | None, session: str | None, before: float) -> int:
        """Cancel the answer to ``request`` and/or every answer of ``session`` asked for
        before ``before`` (a cancel never stops a question sent after it); how many."""
        hits = [task for rid, (task, owner, ts) in self.active.items()
                if rid == request or (session is not None and owner == session and ts <= before)]
        for task in hits:
            task.cancel()
        return len(hits)

    async def finish(self, msg: Message, data: dict[str, Any]) -> None:
        """The final ``llm/response`` for ``msg`` (logged, never raised, if it cannot go)."""
        await answer(self.client, msg, t.LLM_RESPONSE, data, tally=self.tally)

    async def _answer(self, msg: Message, text: str, history: list[dict[str, str]],
                      turn: int | None) -> None:
        assert msg.envelope is not None
        rid, reply, seq = msg.envelope.id, "", 0
        final: dict[str, Any] = {}
        try:
            async with asyncio.timeout(self.settings.answer_timeout):
                # the model sees the history too, so memories repeating it are dropped;
                # the skills see no history, so they keep them
                seen = history if self.settings.endpoint is not None else []
                memories = useful_memories(await self._recall(text), text, seen,
                                           self.settings.memory_k)
                async for piece in self._pieces(text, history, memories, final):
                    piece = piece[:self.settings.max_chars - len(reply)]
                    reply += piece
                    await self._delta(rid, {"delta": piece, "seq": seq} if turn is None
                                      else {"delta": piece, "seq": seq, "turn": turn})
                    seq += 1
                    if len(reply) >= self.settings.max_chars:
                        log.warning("answer %s cut at %d characters", rid, len(reply))
                        break
            if not reply.strip():
                final["error"] = "the language model sent no text"
        except EndpointError as exc:
            final["error"] = str(exc)
        except TimeoutError:
            final["error"] = f"no whole answer within {self.settings.answer_timeout:g} s"
        except asyncio.CancelledError:
            self.tally.add("cancelled")
            self.active.pop(rid, None)
            await self.finish(msg, {"reply": reply, "error": "cancelled"})
            raise
        if "error" in final:
            self.tally.add("failed")
            log.warning("answer %s failed: %s", rid, final["error"])
        self.active.pop(rid, None)  # free before the answer goes: the next may come at once
        await self.finish(msg, {"reply": reply, **final})

    async def _pieces(self, text: str, history: list[dict[str, str]],
                      memories: list[dict[str, Any]], final: dict[str, Any]
                      ) -> AsyncIterator[str]:
        endpoint = self.settings.endpoint
        if endpoint is None or self.http is None:
            answer = respond(text, Facts(self._now(), self.persona, dict(self.health), memories))
            if answer.action is not None:
                final["action"] = answer.action
            yield answer.text
            return
        messages = build_messages(text, self.persona, memories, history)
        async for piece in stream_chat(self.http, endpoint, messages):
            yield piece

    async def _recall(self, text: str) -> Any:
        """memory/results for ``text``, or [] when memory is down, slow or broken."""
        if self.settings.memory_k == 0 or not self.health.get("memory"):
            return []
        try:
            msg = await self.client.request(
                t.MEMORY_QUERY.name, t.MEMORY_QUERY.event_type,
                {"text": text, "k": self.settings.memory_k + 2},
                timeout=self.settings.memory_timeout, reply_topic=t.MEMORY_RESULTS.name)
        except (RequestTimeout, MQTTError) as exc:
            self.tally.add("memory_missed")
            log.info("answering without memory: %s", exc)
            return []
        return msg.data.get("results", []) if isinstance(msg.data, dict) else []

    async def _delta(self, rid: str, data: dict[str, Any]) -> None:
        try:
            await self.client.publish_event(t.LLM_STREAM.name, t.LLM_STREAM.event_type,
                                            data, qos=t.LLM_STREAM.qos, correlate=rid)
        except UNSENDABLE as exc:  # QoS 0: a lost piece; the final answer carries everything
            log.debug("piece %d of %s not sent: %s", data["seq"], rid, exc)
