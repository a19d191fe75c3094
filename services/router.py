"""tars-router: the conversation (:mod:`services.conversation`) on the asyncio client.

Subscribes ``wake/event``, ``stt/final``, ``tts/status`` and ``llm/stream``; handlers only
queue the machine's events, one loop feeds them (and the deadlines) to
:class:`Conversation` and carries its actions out: ``system/state`` (retained),
``movement/command``, ``movement/stop``, ``tts/say``, ``tts/control``, ``llm/cancel``, and
``llm/request`` as a request whose streamed pieces are said sentence by sentence; no first
piece (or reply) within ``TARS_ROUTER_LLM_TIMEOUT`` says the fallback sentence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tars_mqtt import Message, MQTTError, RequestTimeout
from tars_mqtt.aio import AsyncMQTTClient

from . import topics as t
from .common import Tally, problems
from .conversation import Action, AskLLM, Conversation, Publish, RouterSettings, event_from
from .runtime import AsyncService, run_async

__all__ = ["Router", "main", "setup"]

log = logging.getLogger("tars.router")


class Router:
    """The asyncio shell: handlers queue events; one loop feeds the machine, runs actions."""

    def __init__(self, client: AsyncMQTTClient, settings: RouterSettings) -> None:
        self.client, self.settings = client, settings
        self.machine = Conversation(settings)
        self.tally = Tally()
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.first_words: dict[int, asyncio.Event] = {}  # turn -> its first piece came
        topics = (t.WAKE_EVENT, t.STT_FINAL, t.TTS_STATUS) + ((t.LLM_STREAM,) if
                                                              settings.stream else ())
        for spec in topics:
            client.subscribe(spec.name, self.on_message, qos=spec.qos)

    async def on_message(self, msg: Message) -> None:
        event = event_from(msg)
        if event is None:
            n = self.tally.add("malformed")
            log.warning("malformed message #%d on %s ignored: %s", n, msg.topic,
                        msg.decode_error or problems(msg, t.spec_for(msg.topic)) or "empty")
            return
        self.events.put_nowait(event)

    async def run(self) -> None:
        await self._perform(self.machine.start())
        while True:
            wait = None if self.machine.deadline is None else max(
                0.0, self.machine.deadline - time.monotonic())
            try:
                event = await asyncio.wait_for(self.events.get(), wait)
            except TimeoutError:
                event = ("timeout",)
            if event[0] == "delta" and event[1] in self.first_words:
                self.first_words[event[1]].set()
            await self._perform(self.machine.handle(event, time.monotonic()))

    async def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, AskLLM):
                task = asyncio.create_task(self._ask(action))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                continue
            try:
                await self.client.publish_event(action.spec.name, action.spec.event_type,
                                                action.data, qos=action.spec.qos,
                                                retain=action.spec.retain)
            except MQTTError as exc:
                log.warning("not published on %s: %s", action.spec.name, exc)

    async def _ask(self, ask: AskLLM) -> None:
        """Ask; the first piece must come within the LLM timeout, the reply within the
        answer timeout. No answer (or one with ``error``) is fed back as None."""
        reply, action = None, None
        data: dict[str, Any] = {"text": ask.text, "turn": ask.turn, "session": ask.session}
        if ask.history:
            data["history"] = list(ask.history)
        first = self.first_words[ask.turn] = asyncio.Event()
        asking = asyncio.ensure_future(self.client.request(
            t.LLM_REQUEST.name, t.LLM_REQUEST.event_type, data, self.settings.answer_timeout,
            reply_topic=t.LLM_RESPONSE.name))
        started = asyncio.ensure_future(first.wait())
        try:
            await asyncio.wait({asking, started}, timeout=self.settings.llm_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if not (asking.done() or started.done()):
                raise RequestTimeout(f"no first words within {self.settings.llm_timeout} s")
            msg = await asking
            answer = msg.data if isinstance(msg.data, dict) else {}
            if isinstance(answer.get("reply"), str) and not answer.get("error"):
                reply = answer["reply"]
                action = answer.get("action") if isinstance(answer.get("action"), str) else None
            else:
                log.warning("the LLM answered with an error: %s", answer.get("error", answer))
        except RequestTimeout as exc:
            log.warning("%s: the fallback is spoken", exc)
            await self._perform([Publish(t.LLM_CANCEL, {"session": ask.session})])
        except MQTTError as exc:
            log.warning("llm request failed: %s", exc)
        finally:
            asking.cancel()
            started.cancel()
            self.first_words.pop(ask.turn, None)
        self.events.put_nowait(("answer", ask.turn, reply, action))


def setup(client: AsyncMQTTClient) -> AsyncService:
    """The router on ``client``: TARS_ROUTER_* timeouts (RouterSettings)."""
    router = Router(client, RouterSettings.from_env())

    async def close() -> None:
        for task in list(router.tasks):
            task.cancel()
        await asyncio.gather(*router.tasks, return_exceptions=True)
        log.info("router stopped; counts %s", router.tally.as_dict())

    return AsyncService(main=router.run, close=close)


def main() -> int:
    """``tars-router``: MQTT_* for the client, TARS_ROUTER_* timeouts (RouterSettings)."""
    return run_async("router", setup)


if __name__ == "__main__":
    raise SystemExit(main())
