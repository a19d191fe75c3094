"""tars-llm: answers ``llm/request`` from an OpenAI-compatible endpoint, or offline.

Subscribes ``llm/request`` (answered by :class:`services.llm_answer.Answerer`: deltas on
``llm/stream``, one final ``llm/response``), ``llm/cancel`` (stops an answer at once), the
retained ``system/health/+`` (which services are up, for the offline responder and to
skip memory when it is down) and the retained ``system/character/current`` (the persona).
"""

from __future__ import annotations

import asyncio
import logging
import re

import httpx

from tars_mqtt import Message
from tars_mqtt.aio import AsyncMQTTClient

from . import topics as t
from .common import Tally, problems
from .llm_answer import Answerer
from .llm_http import endpoint_name
from .llm_settings import LLMSettings
from .persona import PersonaError, from_data
from .runtime import AsyncService, run_async
from .text import shown

__all__ = ["LLMService", "admit", "main", "setup"]

log = logging.getLogger("tars.llm")
MAX_TEXT = 4000
MAX_PEERS = 64  # other clients' health kept; the robot's own services always are
_CLIENT_ID = re.compile(r"[\w.:-]{1,64}", re.ASCII)
SERVICES = frozenset(n for spec in t.TABLE for n in spec.publishers | spec.subscribers)


class LLMService:
    """The handlers; the answering itself is the :class:`Answerer`'s."""

    def __init__(self, client: AsyncMQTTClient, settings: LLMSettings) -> None:
        self.settings, self.tally = settings, Tally()
        self.http = httpx.AsyncClient() if settings.endpoint is not None else None
        self.answers = Answerer(client, settings, self.http, self.tally)
        client.subscribe(t.LLM_REQUEST.name, self.on_request, qos=t.LLM_REQUEST.qos)
        client.subscribe(t.LLM_CANCEL.name, self.on_cancel, qos=t.LLM_CANCEL.qos)
        client.subscribe("system/health/+", self.on_health, qos=1)
        client.subscribe(t.CHARACTER_CURRENT.name, self.on_character, qos=t.CHARACTER_CURRENT.qos)
        where = endpoint_name(settings.endpoint) if settings.endpoint else "the offline responder"
        log.info("answering with %s as %s", where, settings.persona.name)

    async def on_request(self, msg: Message) -> None:
        wrong = problems(msg, t.LLM_REQUEST)
        data = msg.data if isinstance(msg.data, dict) else {}
        text = data.get("text", "")[:MAX_TEXT] if isinstance(data.get("text"), str) else ""
        if not wrong and not text.strip():
            wrong = ["llm/request: text is empty"]
        if wrong:  # answered too (when it says where), so the asker need not wait it out
            self._malformed(msg, wrong)
            await self.answers.finish(msg, {"reply": "", "error": "; ".join(wrong)})
            return
        assert msg.envelope is not None
        session = data.get("session") or msg.envelope.source
        refused = self.answers.start(msg, text, data.get("history"), session, data.get("turn"))
        if refused is not None:
            self.tally.add("busy")
            await self.answers.finish(msg, {"reply": "", "error": refused})

    async def on_cancel(self, msg: Message) -> None:
        wrong = problems(msg, t.LLM_CANCEL)
        data = msg.data if isinstance(msg.data, dict) else {}
        if not wrong and "request" not in data and "session" not in data:
            wrong = ["llm/cancel: name a request or a session"]
        if wrong:
            self._malformed(msg, wrong)
            return
        assert msg.envelope is not None
        n = self.answers.cancel(data.get("request"), data.get("session"), msg.envelope.ts)
        log.info("cancel of request %s, session %s: %d answer(s) stopped",
                 shown(data.get("request")), shown(data.get("session")), n)

    async def on_health(self, msg: Message) -> None:
        name = msg.topic.rsplit("/", 1)[-1]
        health = self.answers.health
        data = msg.data
        if not msg.payload:  # a cleared retained health: that service is gone
            health.pop(name, None)
        elif not (isinstance(data, dict) and isinstance(data.get("ok"), bool)):
            self._malformed(msg, ["health must be {ok: bool, event}"])
        elif not _CLIENT_ID.fullmatch(name):  # it would be said aloud ("which are running")
            self._malformed(msg, [f"{shown(name)} is no client id"])
        elif admit(health, name):
            health[name] = data["ok"]
        else:
            self.tally.add("peers_ignored")

    async def on_character(self, msg: Message) -> None:
        wrong = problems(msg, t.CHARACTER_CURRENT)
        if not wrong:
            try:
                self.answers.persona = from_data(msg.data, t.CHARACTER_CURRENT.name)
                return
            except PersonaError as exc:
                wrong = [str(exc)]
        self._malformed(msg, wrong)

    async def stopping(self) -> None:
        """Answer what is in flight with ``cancelled`` while the client still publishes."""
        tasks = [task for task, _, _ in self.answers.active.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopping; counts %s", self.tally.as_dict())

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    def _malformed(self, msg: Message, wrong: list[str]) -> None:
        n = self.tally.add("malformed")
        log.warning("malformed message #%d on %s ignored: %s", n, msg.topic,
                    "; ".join(wrong) or msg.decode_error or "not an envelope")


def admit(health: dict[str, bool], name: str, limit: int = MAX_PEERS) -> bool:
    """Whether ``name``'s health may be kept: the robot's services always; other clients
    (every tool run under a new id leaves a retained health for ever) while fewer than
    ``limit`` are kept, a new one taking the place of one that is down."""
    if name in health or name in SERVICES or len(health) < limit:
        return True
    gone = next((n for n, ok in health.items() if not ok and n not in SERVICES), None)
    if gone is not None:
        del health[gone]
    return gone is not None


def setup(client: AsyncMQTTClient) -> AsyncService:
    """Settings (``TARS_LLM_*``, ``TARS_PERSONA``) and handlers; raises ConfigError."""
    service = LLMService(client, LLMSettings.from_env())
    return AsyncService(stopping=service.stopping, close=service.close)


def main() -> int:
    """``tars-llm``."""
    return run_async("llm", setup)


if __name__ == "__main__":
    raise SystemExit(main())
