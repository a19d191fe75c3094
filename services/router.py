"""tars-router: the conversation (:mod:`services.conversation`) on the asyncio client.

Subscribes ``wake/event``, ``stt/final`` and ``tts/status``; handlers only queue the
machine's events, one loop feeds them (and the deadlines) to :class:`Conversation` and
carries its actions out: ``system/state`` (retained), ``movement/command``,
``movement/stop``, ``tts/say``, ``tts/control``, and ``llm/request`` as a request with a
timeout whose reply, or the fallback sentence, is said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from tars_mqtt import ConfigError, ConnectError, Message, MQTTConfig, MQTTError, RequestTimeout
from tars_mqtt.aio import AsyncMQTTClient

from . import topics as t
from .common import Tally, problems, setup_logging
from .conversation import Action, AskLLM, Conversation, RouterSettings, event_from
from .sdnotify import EXIT_CONFIG, Notifier

__all__ = ["Router", "main", "serve"]

log = logging.getLogger("tars.router")


class Router:
    """The asyncio shell: handlers queue events; one loop feeds the machine, runs actions."""

    def __init__(self, client: AsyncMQTTClient, settings: RouterSettings) -> None:
        self.client, self.settings = client, settings
        self.machine = Conversation(settings)
        self.tally = Tally()
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        for spec in (t.WAKE_EVENT, t.STT_FINAL, t.TTS_STATUS):
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
        reply = None
        try:
            msg = await self.client.request(t.LLM_REQUEST.name, t.LLM_REQUEST.event_type,
                                            {"text": ask.text}, self.settings.llm_timeout,
                                            reply_topic=t.LLM_RESPONSE.name)
            data = msg.data if isinstance(msg.data, dict) else {}
            if isinstance(data.get("reply"), str) and data["reply"] and not data.get("error"):
                reply = data["reply"]
            else:
                log.warning("the LLM answered with an error: %s", data.get("error", data))
        except RequestTimeout:
            log.warning("no LLM answer within %s s: the fallback is spoken",
                        self.settings.llm_timeout)
        except MQTTError as exc:
            log.warning("llm request failed: %s", exc)
        self.events.put_nowait(("answer", ask.turn, reply))


async def serve(client: AsyncMQTTClient, settings: RouterSettings) -> int:
    """Run until SIGTERM/SIGINT (READY/WATCHDOG/STOPPING to systemd), then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    notifier = Notifier()
    router = Router(client, settings)
    delay = 0.5
    while True:  # a broker that is down at boot is waited for, bad credentials are not
        try:
            await client.start()
            break
        except ConnectError as exc:
            if exc.reason in ("bad_credentials", "not_authorized"):
                log.error("cannot start: %s", exc)
                return EXIT_CONFIG
            log.warning("%s; retrying in %.1f s", exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
            return 0
        delay = min(delay * 2, 5.0)
    notifier.ready()
    tasks = [asyncio.create_task(c) for c in (router.run(), stop.wait(), _pings(client, notifier))]
    done, _ = await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
    crashed = tasks[0] in done  # run() only ever ends by raising
    if crashed:
        log.error("the router loop died", exc_info=tasks[0].exception())
    log.info("stopping; counts %s", router.tally.as_dict())
    notifier.stopping()
    for task in (*tasks, *router.tasks):
        task.cancel()
    await asyncio.gather(*tasks, *router.tasks, return_exceptions=True)
    await client.stop()
    return 1 if crashed else 0


async def _pings(client: AsyncMQTTClient, notifier: Notifier) -> None:
    """WATCHDOG=1 while the loop turns and the client is live (a wedged loop stops them)."""
    while notifier.watchdog_interval:
        if client.sync.liveness_problem() is None:
            notifier.watchdog()
        await asyncio.sleep(notifier.watchdog_interval)


def main() -> int:
    """``tars-router``: MQTT_* for the client, TARS_ROUTER_* timeouts (RouterSettings)."""
    setup_logging()
    try:
        settings = RouterSettings.from_env()
        config = MQTTConfig.from_env(client_id="router")
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 2
    return asyncio.run(serve(AsyncMQTTClient(config), settings))


if __name__ == "__main__":
    raise SystemExit(main())
