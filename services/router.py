"""tars-router: the conversation (:mod:`services.conversation`) on the asyncio client.

Handlers only queue the machine's events (``wake/event``, ``stt/final``, ``tts/status``,
``llm/stream``); one loop feeds them and the deadlines to :class:`Conversation` and
carries its actions out: ``system/state`` (retained), ``movement/command``,
``movement/stop``, ``tts/say``, ``tts/control``, ``llm/cancel``, and ``llm/request`` as a
request whose streamed pieces are said sentence by sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from tars_mqtt import Message, PublishError, PublishHandle, RequestTimeout
from tars_mqtt.aio import AsyncMQTTClient

from . import topics as t
from .common import UNSENDABLE, Tally, publish, unsent
from .conversation import Action, AskLLM, Conversation, Publish, event_from, llm_reply, stuck
from .router_settings import RouterSettings
from .runtime import AsyncService, run_async

__all__ = ["Router", "main", "setup"]

log = logging.getLogger("tars.router")
EVENT_BACKLOG = 64  # events waiting for the loop; beyond, handlers wait (back-pressure)
STUCK_AFTER = 60.0  # seconds on one event (or past a deadline) before the loop counts as stuck


class Router:
    """The asyncio shell: handlers queue events; one loop feeds the machine, runs actions."""

    def __init__(self, client: AsyncMQTTClient, settings: RouterSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.settings, self._clock = client, settings, clock
        self.tally = Tally()
        self.machine = Conversation(settings, tally=self.tally)
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(EVENT_BACKLOG)
        self._busy_since: float | None = None  # when the loop took the event it is on
        self.tasks: set[asyncio.Task[None]] = set()  # the question being asked (at most one)
        self.first_words: dict[int, asyncio.Event] = {}  # turn -> its first piece came
        topics = (t.WAKE_EVENT, t.STT_FINAL, t.TTS_STATUS) + ((t.LLM_STREAM,) if
                                                              settings.stream else ())
        for spec in topics:
            client.subscribe(spec.name, self.on_message, qos=spec.qos)

    async def on_message(self, msg: Message) -> None:
        event, problem = event_from(msg)
        if event is None:
            n = self.tally.add("malformed")
            log.warning("malformed message #%d on %s ignored: %s", n, msg.topic, problem)
            return
        await self.events.put(event)  # full: the worker waits, and the broker with it

    async def run(self) -> None:
        self._perform(self.machine.start())
        while True:
            self._busy_since = None
            wait = None if self.machine.deadline is None else max(
                0.0, self.machine.deadline - self._clock())
            try:
                event = await asyncio.wait_for(self.events.get(), wait)
            except TimeoutError:
                event = ("timeout",)
            self._busy_since = self._clock()
            if event[0] == "delta" and event[1] in self.first_words:
                self.first_words[event[1]].set()
            self._perform(self.machine.handle(event, self._busy_since))

    def liveness(self) -> str | None:
        """Why the conversation loop is stuck: on one event, or past a deadline, too long."""
        return stuck(self._clock(), self._busy_since, self.machine.deadline, STUCK_AFTER)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        log.info("router stopped; counts %s", self.tally.as_dict())

    def _perform(self, actions: list[Action]) -> None:
        """Hand the actions over; never waits for the broker (a slow ack must not hold up
        the one loop, nor a loop held up stall the client's inbound side)."""
        for action in actions:
            if isinstance(action, AskLLM):
                for older in self.tasks:  # a new question makes the older ones stale: no
                    older.cancel()  # pile of requests waiting out their timeouts
                task = asyncio.create_task(self._ask(action))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                continue
            handle = publish(self.client.sync, action.spec, action.data, tally=self.tally)
            if handle is not None:  # else logged and counted: the loop goes on regardless
                handle.add_done_callback(self._settled)

    def _settled(self, handle: PublishHandle) -> None:
        """On the client's thread once the broker answered: a refusal is logged and counted."""
        try:
            handle.wait(0)
        except PublishError as exc:
            unsent(self.tally, handle.topic, exc)

    async def _ask(self, ask: AskLLM) -> None:
        """Ask; the first piece must come within the LLM timeout, the reply within the
        answer timeout. No answer (or one with ``error``) is fed back as None."""
        reply, action = None, None
        first = self.first_words[ask.turn] = asyncio.Event()
        asking = asyncio.ensure_future(self.client.request(
            t.LLM_REQUEST.name, t.LLM_REQUEST.event_type, ask.data(),
            self.settings.answer_timeout, reply_topic=t.LLM_RESPONSE.name))
        started = asyncio.ensure_future(first.wait())
        try:
            await asyncio.wait({asking, started}, timeout=self.settings.llm_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if not (asking.done() or started.done()):
                raise RequestTimeout(f"no first words within {self.settings.llm_timeout} s")
            reply, action, problem = llm_reply(await asking)
            if problem:
                log.warning("%s: the fallback is spoken", problem)
        except RequestTimeout as exc:
            log.warning("%s: the fallback is spoken", exc)
            self._perform([Publish(t.LLM_CANCEL, {"session": ask.session})])
        except UNSENDABLE as exc:
            unsent(self.tally, t.LLM_REQUEST.name, exc)
        finally:  # the answer always goes back; a full backlog drops it (the deadline ends
            asking.cancel()  # the turn then)
            started.cancel()
            self.first_words.pop(ask.turn, None)
            with contextlib.suppress(asyncio.QueueFull):
                self.events.put_nowait(("answer", ask.turn, reply, action))


def setup(client: AsyncMQTTClient) -> AsyncService:
    """The router on ``client``: TARS_ROUTER_* timeouts (RouterSettings)."""
    router = Router(client, RouterSettings.from_env())
    return AsyncService(main=router.run, close=router.close, liveness=router.liveness)


def main() -> int:
    """``tars-router``: MQTT_* for the client, TARS_ROUTER_* timeouts (RouterSettings)."""
    return run_async("router", setup)


if __name__ == "__main__":
    raise SystemExit(main())
