"""The web view's HTTP and WebSocket side against a real mosquitto, with real sockets.

The service runs in the test's event loop (its :class:`services.ui.app.UI`, as the
runtime would run it); pages are aiohttp WebSocket clients or raw sockets. No sleeping:
every wait is for a frame, a count or a message, with a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services import topics as t
from services.ui.app import UI
from services.ui.protocol import MAX_FRAME
from services.ui.settings import UISettings
from services.ui.web import COOKIE
from tars_mqtt import Message, MQTTClient, MQTTConfig
from tars_mqtt.aio import AsyncMQTTClient
from tars_mqtt.testing import free_port

Frame = dict[str, Any]
TIMEOUT = 10.0


def run(coro: Coroutine[Any, Any, None], timeout: float = 30.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serving(config: MQTTConfig, **settings: Any) -> AsyncIterator[UI]:
    """The UI, connected and serving on a free port, stopped at the end."""
    client = AsyncMQTTClient(config)
    ui = UI(client, UISettings(port=free_port(), **settings))
    await client.start()
    main = asyncio.create_task(ui.main())
    try:
        await until(lambda: ui.last_tick is not None or main.done())
        if main.done():
            main.result()
        yield ui
    finally:
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        await ui.close()
        await client.stop()


class Page:
    """A WebSocket page that reads every frame into a list."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.frames = ws, list[Frame]()
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(msg.json())
        self.closed.set()

    async def wait(self, kind: str, timeout: float = TIMEOUT, **fields: Any) -> Frame:
        def find() -> Frame | None:
            return next((f for f in self.frames if f.get("kind") == kind
                         and all(f.get(k) == v for k, v in fields.items())), None)

        try:
            await until(lambda: find() is not None, timeout)
        except TimeoutError:
            seen = [str(f)[:160] for f in self.frames if f["kind"] not in ("rates", "stats")]
            raise AssertionError(f"no {kind} frame {fields}; the last ones: {seen[-8:]}") \
                from None
        found = find()
        assert found is not None
        return found

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send_str(frame if isinstance(frame, str) else _json(frame))


def _json(frame: Frame) -> str:
    import json
    return json.dumps(frame)


@contextlib.asynccontextmanager
async def page(ui: UI, **headers: str) -> AsyncIterator[Page]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session, \
            session.ws_connect(f"http://127.0.0.1:{ui.settings.port}/ws",
                               headers=headers) as ws:
        opened = Page(ws)
        yield opened


def bus(config: MQTTConfig, client_id: str) -> MQTTClient:
    import dataclasses
    return MQTTClient(dataclasses.replace(config, client_id=client_id, enable_health=False,
                                          enable_heartbeat=False))


# The protocol ------------------------------------------------------------------------------
def test_a_page_gets_the_whole_picture_first(make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        with bus(make_config(), "router") as router:
            router.publish_event(t.SYSTEM_STATE.name, t.SYSTEM_STATE.event_type,
                                 {"state": "thinking"}, retain=True).wait(5)
            async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
                hello = await p.wait("hello")
                assert hello["robot"]["state"] == "thinking"  # the retained state
                assert "wave" in hello["moves"] and hello["filter"] == "#"
                assert any(r["client"] == "ui" for r in hello["health"])
                await p.wait("health")
                await p.wait("rates")
    run(scenario())


def test_bad_frames_are_answered_and_counted_and_the_page_stays(
        make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
            await p.wait("hello")
            await p.send("not json at all")
            await p.send('{"op": "launch_missiles"}')
            await p.send('{"op": "filter", "topic": "a/#/b"}')
            await p.ws.send_bytes(b"\x00\x01")
            await until(lambda: len([f for f in p.frames if f["kind"] == "error"]) == 4)
            errors = [f["error"] for f in p.frames if f["kind"] == "error"]
            assert errors[0] == "not JSON" and "unknown op 'launch_missiles'" in errors[1]
            assert "'#' must be a whole, last level" in errors[2]
            assert "binary frames are not understood" in errors[3]
            await p.send({"op": "filter", "topic": "movement/#"})
            assert (await p.wait("filter"))["topic"] == "movement/#"
            assert not p.ws.closed
            conn = next(iter(ui.hub.connections))
            assert conn.bad_frames == 4 and conn.topic_filter == "movement/#"
    run(scenario())


def test_text_no_encoder_can_send_is_refused_and_the_page_and_the_bus_go_on(
        make_config: Callable[..., MQTTConfig]) -> None:
    """A lone surrogate escape is valid JSON: a say holding one once raised on the way to
    the bus (the page got no answer), and echoing it back broke that page's frames."""
    async def scenario() -> None:
        with bus(make_config(), "tools") as tools:
            rec = Recorder(tools)
            async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
                await p.wait("hello")
                await p.send('{"op": "say", "id": "y1", "text": "hi \\ud800"}')
                await p.send('{"op": "stop", "id": "\\udfff"}')
                await until(lambda: len([f for f in p.frames if f["kind"] == "error"]) == 2)
                errors = [f["error"] for f in p.frames if f["kind"] == "error"]
                assert errors == ["'text' is not valid UTF-8 text",
                                  "'id' is not valid UTF-8 text"]
                await p.send({"op": "say", "id": "y2", "text": "Still here"})
                await p.wait("result", id="y2", state="sent")
                await until(lambda: bool(rec.on("tts/say")))
                assert not p.ws.closed
            assert [d["text"] for d in rec.on("tts/say")] == ["Still here"]
    run(scenario())


def test_an_oversize_frame_closes_the_socket_with_1009(
        make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
            await p.wait("hello")
            await p.send({"op": "say", "text": "x" * MAX_FRAME})
            await asyncio.wait_for(p.closed.wait(), TIMEOUT)
            assert p.ws.close_code == 1009
            await until(lambda: not ui.hub.connections)
            async with page(ui) as again:  # the service itself is fine
                await again.wait("hello")
    run(scenario())


def test_a_page_that_keeps_sending_garbage_is_disconnected(
        make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
            await p.wait("hello")
            for _ in range(60):
                if p.ws.closed:
                    break
                await p.send("[]")
            await asyncio.wait_for(p.closed.wait(), TIMEOUT)
            await until(lambda: not ui.hub.connections)
    run(scenario())


@pytest.mark.slow
def test_a_page_that_never_reads_never_slows_the_bus_side(
        make_config: Callable[..., MQTTConfig]) -> None:
    """A raw WebSocket that never reads, a tiny receive buffer, and a flood on the bus."""
    count = 8_000

    async def scenario() -> None:
        async with serving(make_config(client_id="ui"), queue=8) as ui, page(ui) as reader:
            await reader.wait("hello")
            stuck = never_reading_socket(ui.settings.port)
            try:
                await until(lambda: len(ui.hub.connections) == 2)
                with bus(make_config(), "flooder") as flooder:
                    await asyncio.to_thread(flood, flooder, ui, count)
                    await live_traffic_reaches(reader, flooder)
                await until(lambda: ui.view.seen >= count + 1, 30)
                assert ui.client.stats().dropped == 0  # the MQTT side lost nothing
                assert ui.hub.dropped > 0  # the stuck page's frames were dropped, counted
            finally:
                stuck.close()
    run(scenario(), timeout=90)


def flood(flooder: MQTTClient, ui: UI, count: int) -> None:
    """``count`` messages as fast as the UI takes them in (the broker's queue for one client
    is bounded too: outrunning it would test mosquitto, not the web view)."""
    body = {"blob": "z" * 1500}
    for n in range(count):
        flooder.publish_event("flood/x", "flood.x", {**body, "n": n}, qos=1)
        if n % 200 == 0:
            deadline = time.monotonic() + TIMEOUT
            while n - ui.view.seen > 400 and time.monotonic() < deadline:
                time.sleep(0.002)  # a condition, polled: the UI has caught up
    flooder.publish_event("flood/done", "flood.done", {}, qos=1).wait(5)


async def live_traffic_reaches(reader: Page, flooder: MQTTClient) -> None:
    """The reading page still gets messages after the flood. On a loaded machine it may
    itself fall behind and have its queue dropped for a snapshot (which holds no traffic
    log), taking ``flood/done`` with it: then the next ``flood/done`` must come through."""
    for attempt in range(10):
        try:
            await reader.wait("msg", timeout=3, topic="flood/done")
            return
        except AssertionError:
            if attempt == 9:
                raise
        await asyncio.to_thread(
            lambda: flooder.publish_event("flood/done", "flood.done", {}, qos=1).wait(5))


def never_reading_socket(port: int) -> socket.socket:
    """A WebSocket handshake, then never a read again (as a frozen browser tab)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


# Who may reach it --------------------------------------------------------------------------
def test_other_origins_and_other_host_names_are_refused(
        make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        async with serving(make_config(client_id="ui")) as ui, aiohttp.ClientSession() as s:
            base = f"http://127.0.0.1:{ui.settings.port}"
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await s.ws_connect(f"{base}/ws", headers={"Origin": "http://evil.example"})
            assert caught.value.status == 403
            async with s.get(f"{base}/", headers={"Host": "evil.example:80"}) as r:
                assert r.status == 421  # a DNS-rebinding page names its own host
            async with s.get(f"{base}/", headers={"Host": f"localhost:{ui.settings.port}"}) as r:
                assert r.status == 200
                assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
            async with s.get(f"{base}/static/../settings.py") as r:
                assert r.status in (403, 404)
            async with page(ui, Origin=base) as p:  # the page's own origin is fine
                await p.wait("hello")
    run(scenario())


def test_with_a_token_nothing_is_served_before_login_and_the_token_is_never_logged(
        make_config: Callable[..., MQTTConfig], caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    token = "tok-" + "9" * 28
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with serving(make_config(client_id="ui"), token=token) as ui, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            base = f"http://127.0.0.1:{ui.settings.port}"
            async with s.get(f"{base}/", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"] == "/login"
            async with s.get(f"{base}/static/app.js") as r:
                assert r.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await s.ws_connect(f"{base}/ws")
            assert caught.value.status == 401
            async with s.post(f"{base}/login", data={"token": "guess-" + "0" * 20}) as r:
                assert r.status == 403
            async with s.post(f"{base}/login", data={"token": token},
                              allow_redirects=False) as r:
                assert r.status == 302
                cookie = r.cookies[COOKIE]
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
                assert token not in cookie.value
            async with s.get(f"{base}/") as r:
                assert r.status == 200 and "TARS" in await r.text()
            async with s.ws_connect(f"{base}/ws") as ws:
                first = await ws.receive_json(timeout=TIMEOUT)
                assert first["kind"] == "hello"
    run(scenario())
    assert token not in caplog.text
    assert "wrong token from 127.0.0.1" in caplog.text


# Controls -------------------------------------------------------------------------------
class Recorder:
    """Every message on the bus, from a plain client."""

    def __init__(self, client: MQTTClient) -> None:
        self.seen: list[Message] = []
        client.subscribe("#", self.seen.append, qos=1)

    def on(self, topic: str) -> list[Any]:
        return [m.data for m in self.seen if m.topic == topic]


def test_each_control_publishes_its_topic_and_shows_what_it_caused(
        make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        with bus(make_config(), "tools") as tools, bus(make_config(), "movement") as movement, \
                bus(make_config(), "speech") as speech:
            rec = Recorder(tools)

            @movement.subscribe(t.MOVEMENT_STOP.name, qos=1)
            def on_stop(msg: Message) -> None:
                movement.publish_event(t.MOVEMENT_STATUS.name, t.MOVEMENT_STATUS.event_type,
                                       {"event": "stopped", "action": "none"})

            @movement.subscribe(t.MOVEMENT_COMMAND.name, qos=1)
            def on_command(msg: Message) -> None:
                movement.reply(msg, "movement.result", {"event": "completed",
                                                        "action": msg.data["action"]})

            @speech.subscribe(t.TTS_SAY.name, qos=1)
            def on_say(msg: Message) -> None:
                for event in ("speaking_start", "speaking_end"):
                    speech.publish_event(t.TTS_STATUS.name, t.TTS_STATUS.event_type,
                                         {"event": event, "utt_id": msg.data["utt_id"]}, qos=0)

            async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
                ui.controls.answer_timeout = 1.0
                await p.wait("hello")
                await p.send({"op": "stop", "id": "s1"})
                done = await p.wait("result", id="s1", state="done")
                assert done["text"] == "movement stopped (none)"
                await p.send({"op": "say", "id": "y1", "text": "Hello  there"})
                assert (await p.wait("result", id="y1", state="done"))["text"] == "spoken"
                said = await p.wait("conv")
                assert said["entry"]["who"] == "said" and said["entry"]["text"] == "Hello there"
                await p.send({"op": "move", "id": "m1", "action": "bow", "speed": 1.5})
                assert (await p.wait("result", id="m1", state="done"))["text"] == \
                    "bow: completed"
                await p.send({"op": "wake", "id": "w1"})
                assert (await p.wait("result", id="w1", state="no answer",
                                     timeout=ui.controls.answer_timeout + 5))["text"] == \
                    "no answer: is the router running?"
            assert rec.on("movement/stop") == [{"reason": "STOP on the web view"}]
            assert rec.on("wake/event") == [{"type": "wake", "source": "ui"}]
            assert rec.on("movement/command") == [{"action": "bow", "speed": 1.5}]
            assert [d["text"] for d in rec.on("tts/say")] == ["Hello there"]
            sources = {m.envelope.source for m in rec.seen if m.envelope
                       and m.topic in ("movement/stop", "wake/event", "tts/say")}
            assert sources == {"ui"}
    run(scenario(), timeout=60)


def test_controls_are_rate_limited_per_page_but_stop_never_is(
        make_config: Callable[..., MQTTConfig]) -> None:
    async def scenario() -> None:
        with bus(make_config(), "tools") as tools:
            rec = Recorder(tools)
            async with serving(make_config(client_id="ui")) as ui, page(ui) as p:
                await p.wait("hello")
                for i in range(20):
                    await p.send({"op": "wake", "id": f"w{i}"})
                for i in range(20):
                    await p.send({"op": "stop", "id": f"s{i}"})
                await until(lambda: len([f for f in p.frames if f["kind"] == "result"
                                         and f["state"] == "sent"]) >= 28)
                limited = [f["id"] for f in p.frames if f["kind"] == "error"]
                assert limited and all(i.startswith("w") for i in limited)
                await until(lambda: len(rec.on("movement/stop")) == 20)
                assert 0 < len(rec.on("wake/event")) < 20
    run(scenario())
